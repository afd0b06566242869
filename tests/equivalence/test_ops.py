"""Every op of the registry, through a one-op model, on every backend: forward,
gradients (mse loss) and a few sgd steps agree with the float64 NumPy reference."""

from __future__ import annotations

import pytest

from nnc.ir.ops import OPS
from nnc.verify import verify
from tests.equivalence.matrix import INFERENCE, TRAINING, explain, need, op_program

OPS_WITH_EXAMPLES = sorted(op for op in OPS if op != "call")


@pytest.mark.parametrize("backend", TRAINING + INFERENCE)
@pytest.mark.parametrize("op", OPS_WITH_EXAMPLES)
def test_op_matches_reference(op: str, backend: str) -> None:
    need(backend)
    report = verify(op_program(op), backends=[backend], steps=5)
    assert report.equivalent, explain(report)
