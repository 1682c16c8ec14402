# The two commands of the README. Both install what they need first (scripts/bootstrap).
.PHONY: serve test lint

ARGS ?=

serve:
	@scripts/bootstrap serve
	.venv/bin/strom serve $(ARGS)

lint:
	.venv/bin/ruff check strom tests bench
	.venv/bin/ruff format --check strom tests bench
	.venv/bin/mypy

test:
	@scripts/bootstrap test
	$(MAKE) --no-print-directory lint
	.venv/bin/python -m pytest $(ARGS)
