"""Every optimizer, and a step and an exponential schedule, for 20 steps on numpy, torch
and tensorflow against the float64 reference; and optimizer state moved half-way
between every ordered pair of those backends continues the same trajectory.

The models are the two coverage models of ``matrix.py``, which together hold every
kind of parameter (dense, conv1d/2d, conv2d_transpose, batchnorm and its running
statistics, layernorm, prelu, embedding, rnn, gru, lstm) and a frozen layer, with
L2 on. One :func:`~nnc.verify.verify` call per case runs both checks (the transfer
reuses the runtimes it built); the report is shared by the two tests of a case.
"""

from __future__ import annotations

import functools
import itertools

import pytest

from nnc.verify import Report, verify
from tests.equivalence.matrix import (
    COVERAGE_MODELS,
    OPTIMIZERS,
    SCHEDULES,
    STATEFUL,
    TRAINING,
    Training,
    coverage_program,
    explain,
    need,
)

# Schedules only change the learning rate each step gets, the same for every
# parameter kind: they run on the vision model.
CASES = [(t, m) for t in OPTIMIZERS for m in COVERAGE_MODELS] + [(t, "Vision") for t in SCHEDULES]
BY_ID = {f"{t.name}-{m}": (t, m) for t, m in CASES}


@functools.cache
def report(case: str) -> Report:
    training, model = BY_ID[case]
    return _verify(training, model)


def _verify(training: Training, model: str) -> Report:
    for backend in TRAINING:
        need(backend)
    return verify(
        coverage_program(),
        model,
        backends=TRAINING,
        steps=20,
        optimizer=training.optimizer,
        schedule=training.schedule,
    )


@pytest.mark.parametrize("case", list(BY_ID))
def test_training_matches_reference(case: str) -> None:
    result = report(case)
    assert result.steps == 20
    assert {(r.backend, r.against) for r in result.rows} >= {(b, "reference") for b in TRAINING}
    assert result.equivalent, explain(result)


STATE_CASES = [f"{t.name}-{m}" for t in STATEFUL for m in COVERAGE_MODELS]


@pytest.mark.parametrize("case", STATE_CASES)
def test_state_moves_between_every_pair_of_backends(case: str) -> None:
    """Trained 10 steps on one backend, weights and optimizer state loaded into another,
    10 more steps there: the parameters, optimizer state and losses match the
    reference's uninterrupted 20 steps."""
    result = report(case)
    pairs = {(t.source, t.target) for t in result.transfers}
    assert pairs >= set(itertools.permutations(TRAINING, 2)), sorted(pairs)
    # The state moved holds the optimizer's slots, not only the step count.
    slots = {"momentum": ["step", "velocity"], "nesterov": ["step", "velocity"]}
    slots |= {"adagrad": ["accumulator", "step"], "rmsprop": ["square_avg", "step"]}
    slots |= {"adam": ["m", "step", "v"]}
    assert {tuple(t.slots) for t in result.transfers} == {tuple(slots[case.split("-")[0]])}
    bad = [t for t in result.transfers if not t.passed]
    assert not bad, explain(result)
