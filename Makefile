# The two commands of the README. Both install what they need first (scripts/bootstrap),
# Python packages from uv.lock only.
.PHONY: serve test lint upgrade fuzz dist

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
	scripts/test $(ARGS)

# The one deliberate way forward: re-resolve every Python dependency to the newest
# versions pyproject.toml allows and rewrite uv.lock. Review the diff, run `make test`,
# commit both.
upgrade:
	@scripts/bootstrap serve
	.venv-tools/bin/uv lock --upgrade
	@scripts/bootstrap test

# Coverage-guided fuzzing with atheris, outside the suite: `make fuzz ARGS="rtmp_chunk
# -max_total_time=600"`; `make fuzz` alone lists the targets.
fuzz:
	@scripts/bootstrap fuzz
	.venv/bin/python -m tests.fuzz.atheris_main $(ARGS)

# An sdist and a wheel in dist/, with the web players vendored into both (the build
# backend, scripts/build_backend/strom_build.py, refuses to build without them).
dist:
	@scripts/bootstrap serve
	.venv-tools/bin/uv build --out-dir dist
