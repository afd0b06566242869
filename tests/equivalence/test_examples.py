"""Every example, on every backend, from the same canonical weights and batches:
forward outputs, gradients, and 20 training steps with the example's own optimizer
agree with the float64 NumPy reference. A large example runs at its reduced input
(tests/conftest.py) and with fewer steps (matrix.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

import nnc
from nnc.verify import verify
from tests.conftest import EXAMPLE_FILES, load_example
from tests.equivalence.matrix import EXAMPLE_STEPS, INFERENCE, TRAINING, explain, need

SUPERVISED = [p for p in EXAMPLE_FILES if p.stem != "gan"]


@pytest.mark.parametrize("backend", TRAINING + INFERENCE)
@pytest.mark.parametrize("example", SUPERVISED, ids=lambda p: p.stem)
def test_example_matches_reference(example: Path, backend: str) -> None:
    need(backend)
    report = verify(
        load_example(example), backends=[backend], steps=EXAMPLE_STEPS.get(example.stem, 20)
    )
    assert report.equivalent, explain(report)


@pytest.mark.parametrize("backend", TRAINING + INFERENCE)
@pytest.mark.parametrize("model", ["Generator", "Discriminator"])
def test_gan_models_match_reference(model: str, backend: str) -> None:
    need(backend)
    report = verify(nnc.load(Path("examples/gan.nn")), model=model, backends=[backend], steps=10)
    assert report.equivalent, explain(report)
