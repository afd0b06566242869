"""Fuzz the parser and checker: every input gives success or a located NncError.

A modest number of inputs runs here; `scripts/fuzz_frontend.py` is the soak run.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.generators import EXAMPLES, mutate, mutate_bytes, random_program
from tests.fuzz.harness import outcome, outcome_bytes

SETTINGS = settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@SETTINGS
@given(st.integers(0, 2**32 - 1))
def test_random_programs(seed: int) -> None:
    outcome(random_program(random.Random(seed)))


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.sampled_from(EXAMPLES), st.integers(1, 3))
def test_mutated_examples(seed: int, example: Path, rounds: int) -> None:
    rng = random.Random(seed)
    text = example.read_text()
    for _ in range(rounds):
        text = mutate(text, rng)
    outcome(text, example.name)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(0, 2**32 - 1), st.sampled_from(EXAMPLES))
def test_non_utf8_files(tmp_path_factory, seed: int, example: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("fuzz") / example.name
    assert outcome_bytes(mutate_bytes(example.read_bytes(), random.Random(seed)), path) != "ok"


def test_generated_programs_are_mostly_meaningful() -> None:
    """The generator must exercise the checker, not just the parser: some of its
    programs are valid and the invalid ones fail in several different ways."""
    results = [outcome(random_program(random.Random(seed))) for seed in range(300)]
    assert results.count("ok") >= 10
    assert len(set(results)) >= 4, set(results)


# Issue 26's mutation kinds: long chains of links (9), models and blocks using the
# previous one once or twice (10), line separators (11), long lines of strings (12).
# Each must give success or an error located inside the text, within the CPU limit.
@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("kind", [9, 10, 11, 12])
def test_issue_26_mutation_kinds(seed: int, kind: int) -> None:
    example = EXAMPLES[(seed * 5 + kind) % len(EXAMPLES)]
    outcome(mutate(example.read_text(), random.Random(seed), kind), example.name)
