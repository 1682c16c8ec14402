"""Every sans-IO parser, fuzzed: random bytes and mutated golden captures, fed in one lump,
byte by byte and in random pieces. Only Strom's protocol errors may come out, with
output bounded by the input and one result whatever the split (see
:mod:`tests.fuzz.targets` for the contract, shared with the atheris harness)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.strategies import FUZZ, mutated, random_bytes, splits
from tests.fuzz.targets import TARGETS, Target, check, run, tokens

#: Seeds are cut to this size in the suite: the interesting part of a capture (handshake,
#: commands, headers, first frames) comes first, and a byte-by-byte feed stays quick.
SUITE_SEED_BYTES = 12_000
#: Byte-by-byte feeding stops being interesting long before this.
BYTEWISE_BYTES = 3_000


@pytest.fixture(scope="module")
def suite_seeds() -> dict[str, list[bytes]]:
    """Every target's seeds, built before hypothesis starts timing examples."""
    return {name: [s[:SUITE_SEED_BYTES] for s in t.seeds()] for name, t in TARGETS.items()}


def _feed(target: Target, data: bytes, split: tuple[int, ...]) -> None:
    if split == (1,):
        data = data[:BYTEWISE_BYTES]
    check(target, data, split if target.streaming else ())


@pytest.mark.parametrize("name", list(TARGETS))
@FUZZ
@given(data=random_bytes(), split=splits)
def test_random_bytes(name: str, data: bytes, split: tuple[int, ...]) -> None:
    _feed(TARGETS[name], data, split)


@pytest.mark.parametrize("name", list(TARGETS))
@FUZZ
@given(choice=st.data(), split=splits)
def test_mutated_captures(
    name: str, suite_seeds: dict[str, list[bytes]], choice: st.DataObject, split: tuple[int, ...]
) -> None:
    target = TARGETS[name]
    data = choice.draw(mutated(suite_seeds[name], tokens(target.dictionary)), label="input")
    _feed(target, data, split)


@pytest.mark.parametrize("name", list(TARGETS))
def test_golden_captures_pass(name: str, suite_seeds: dict[str, list[bytes]]) -> None:
    """The unmutated seeds are accepted whole (a seed that errors would fuzz nothing)."""
    target = TARGETS[name]
    for seed in suite_seeds[name]:
        check(target, seed, (1000,))
        out, error = run(target, seed, ())
        assert error is None, f"a seed of {name} fails with {error}"
        assert out
