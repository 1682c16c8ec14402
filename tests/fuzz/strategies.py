"""Hypothesis strategies for fuzzing: random bytes, and golden captures mutated the way
coverage-guided fuzzers do (bit flips, interesting bytes, truncations, splices, cut and
duplicated ranges, length fields bumped by one or set to extremes, tokens of the target's
libFuzzer dictionary written in), fed in one lump, byte by byte or in random pieces.

Profiles (``HYPOTHESIS_PROFILE``): ``fuzz`` (default) keeps the whole fuzz suite to about
half a minute on a busy two-core machine, derandomized so that ``make test`` is
repeatable; ``fuzz-long`` runs 16x the examples with fresh randomness each run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from hypothesis import settings
from hypothesis import strategies as st

from tests.fuzz.targets import Split

settings.register_profile(
    "fuzz",
    max_examples=100,
    # No per-example deadline in the suite: on a loaded machine an example past it was
    # run again, and a re-run that drew differently failed as "Inconsistent data
    # generation" (seen in CI). Parsing time is bounded in test_bounds.py.
    deadline=None,
    derandomize=True,
    database=None,
)
settings.register_profile(
    "fuzz-long",
    max_examples=1600,
    deadline=2000,
    database=None,
)
_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "fuzz")
#: The settings every fuzz test runs with (not loaded globally: other tests keep theirs).
FUZZ = settings.get_profile(_PROFILE if _PROFILE.startswith("fuzz") else "fuzz")

#: Bytes that break parsers more often than random ones.
INTERESTING = (0x00, 0x01, 0x02, 0x03, 0x07, 0x0F, 0x1F, 0x3F, 0x40, 0x47, 0x7F, 0x80, 0x81,
               0xC0, 0xFE, 0xFF)  # fmt: skip

splits: st.SearchStrategy[Split] = st.one_of(
    st.just(()),
    st.just((1,)),
    st.lists(st.integers(1, 700), min_size=1, max_size=5).map(tuple),
)


def random_bytes(max_size: int = 512) -> st.SearchStrategy[bytes]:
    return st.binary(max_size=max_size)


@st.composite
def _mutate(draw: st.DrawFn, seeds: Sequence[bytes], tokens: Sequence[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        size = len(data)
        pos = draw(st.integers(0, max(size - 1, 0)))
        op = draw(st.sampled_from(("flip", "byte", "truncate", "splice", "cut", "dup",
                                   "length", "insert", "token", "token")))  # fmt: skip
        if op == "flip" and size:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte" and size:
            data[pos] = draw(st.sampled_from(INTERESTING) | st.integers(0, 255))
        elif op == "truncate":
            del data[pos:]
        elif op == "splice":
            other = draw(st.sampled_from(seeds))
            start = draw(st.integers(0, max(len(other) - 1, 0)))
            data[pos:pos] = other[start : start + draw(st.integers(1, 256))]
        elif op == "cut":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == "dup":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 64))]
        elif op == "length" and size:
            # A length or count field: 1-4 bytes, either byte order, bumped or set extreme.
            width = draw(st.sampled_from((1, 2, 3, 4)))
            order = draw(st.sampled_from(("big", "little")))
            field = data[pos : pos + width]
            value = int.from_bytes(field, order)
            top = (1 << (8 * len(field))) - 1
            value = draw(st.sampled_from((value + 1, value - 1, value * 2, 0, top, top >> 1,
                                          value + 16)))  # fmt: skip
            data[pos : pos + len(field)] = (value & top).to_bytes(len(field), order)
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "token" and tokens:
            # A dictionary token (a command name, a marker, an infinite double...),
            # written over the bytes there or inserted.
            token = draw(st.sampled_from(tokens))
            end = pos + len(token) if draw(st.booleans()) else pos
            data[pos:end] = token
    return bytes(data)


def mutated(seeds: Sequence[bytes], tokens: Sequence[bytes] = ()) -> st.SearchStrategy[bytes]:
    """A golden capture with a few mutations (or none)."""
    return st.one_of(st.sampled_from(seeds), _mutate(seeds, tokens))
