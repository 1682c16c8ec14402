"""Coverage-guided fuzzing of Strom's parsers with atheris (libFuzzer), outside the suite.

Usage, from the repository root (``make fuzz`` installs atheris first)::

    make fuzz                                          # list the targets
    make fuzz ARGS="rtmp_chunk -max_total_time=600"    # fuzz one for ten minutes
    .venv/bin/python -m tests.fuzz.atheris_main webm -runs=100000
    .venv/bin/python -m tests.fuzz.atheris_main mp4 .fuzz-crashes/mp4/crash-...  # replay

Each target is the function the in-suite tests call (:mod:`tests.fuzz.targets`): only
protocol errors may come out, output stays bounded by the input, and a streaming parser
is fed both in one lump and in pieces that the input itself chooses (so a crash replays
exactly). The corpus lives in ``.fuzz-corpus/TARGET`` and is seeded from the golden
captures on every start; crashes, timeouts and out-of-memory inputs are written to
``.fuzz-crashes/TARGET/`` (both directories are git-ignored). A crasher, once fixed,
becomes a regression test in ``tests/fuzz/test_regressions.py``.

Defaults added unless given: ``-timeout=10`` (seconds per input: work must be bounded),
``-rss_limit_mb=2048``, ``-max_len=32768`` (the seeds are the captures' first 16 KiB),
and ``-dict=`` the target's token dictionary in ``tests/fuzz/dicts/``.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / ".fuzz-corpus"
CRASHES = ROOT / ".fuzz-crashes"
DEFAULTS = ("-timeout=10", "-rss_limit_mb=2048", "-max_len=32768")
#: Seeds are cut to this: a capture's head (handshake, commands, headers, first frames)
#: is where the parsing is; the rest is more of the same and only slows each run.
SEED_BYTES = 16384


def _usage(targets: dict[str, object]) -> int:
    print("\n\n".join((__doc__ or "").split("\n\n")[1:3]).replace("::", ":"))
    print("targets:")
    for name, target in targets.items():
        print(f"  {name:16} {target.doc}")  # type: ignore[attr-defined]
    return 2


def write_seeds(name: str, seeds: list[bytes]) -> Path:
    """The corpus directory of ``name``, with every golden seed in it (named by hash)."""
    corpus = CORPUS / name
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in (s[:SEED_BYTES] for s in seeds):
        path = corpus / f"seed-{hashlib.sha1(seed).hexdigest()[:16]}"
        if not path.exists():
            path.write_bytes(seed)
    return corpus


def main(argv: list[str]) -> int:
    import atheris  # noqa: PLC0415 - only `make fuzz` installs it

    # Strom's modules are imported here, inside the block, so that they are instrumented.
    with atheris.instrument_imports(include=["strom"]):
        from tests.fuzz import targets as fuzz_targets  # noqa: PLC0415

    if len(argv) < 2:
        _usage(fuzz_targets.TARGETS)
        return 0
    if argv[1] not in fuzz_targets.TARGETS:
        print(f"unknown target {argv[1]!r}")
        return _usage(fuzz_targets.TARGETS)
    name = argv[1]
    target = fuzz_targets.TARGETS[name]
    args = [argv[0], *argv[2:]]
    dictionary = fuzz_targets.DICTIONARIES / f"{target.dictionary}.dict"
    for default in (*DEFAULTS, f"-dict={dictionary}"):
        if not any(a.startswith(default.split("=")[0] + "=") for a in args):
            args.append(default)
    replay = [a for a in argv[2:] if not a.startswith("-")]
    if not replay:  # fuzzing: the corpus first, so libFuzzer writes new inputs there
        crashes = CRASHES / name
        crashes.mkdir(parents=True, exist_ok=True)
        args.insert(1, str(write_seeds(name, list(target.seeds()))))
        if not any(a.startswith("-artifact_prefix=") for a in args):
            args.append(f"-artifact_prefix={crashes}/")

    def one_input(data: bytes) -> None:
        fuzz_targets.check(target, data, fuzz_targets.derived_split(data))

    atheris.Setup(args, one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
