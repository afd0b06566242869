"""max, min and global_max_pool send the whole gradient to the first extreme element
in row-major order (docs/semantics.md, "Reductions"), on every training backend, where
torch's ``amax`` and TensorFlow's ``reduce_max`` would split it among the ties.

The dense layer's rows are made equal, so its four outputs tie exactly; the weight
gradient then shows which of them received the loss's gradient."""

from __future__ import annotations

import numpy as np
import pytest

import nnc
from nnc.backends.registry import parse_backend
from tests.equivalence.matrix import TRAINING, need

SOURCE = """
model Ties {{
    input x: [3]
    dense(4, bias = false)
    reshape([2, 2])
    {reduce}
}}

train Ties {{
    data      "ties.npz"
    loss      sse
    optimizer sgd(lr = 0.1)
}}
"""

REDUCTIONS = {
    "max(axis = [0, 1])": [0],  # all four tie: the first one
    "min(axis = [0, 1])": [0],
    "max(axis = [1])": [0, 2],  # per row: [u0, u1] and [u2, u3]
    "min(axis = [0])": [0, 1],  # per column: [u0, u2] and [u1, u3]
}


@pytest.mark.parametrize("backend", TRAINING)
@pytest.mark.parametrize("reduce", sorted(REDUCTIONS))
def test_the_first_extreme_takes_the_whole_gradient(backend: str, reduce: str) -> None:
    need(backend)
    program = nnc.parse(SOURCE.format(reduce=reduce))
    row = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    weights = {"dense_1.weight": np.tile(row, (4, 1))}
    x = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.25]], dtype=np.float32)
    out = parse_backend(backend).load().build(program, "Ties", weights)
    y = np.zeros_like(out.forward(x))
    grad = out.gradients(x, y)["dense_1.weight"]
    # sse: d/dy = y - 0 = y; every tied output equals x @ row, so each chosen unit's
    # weight row gets sum over the batch of (x @ row) * x, the others exactly 0.
    h = x @ row
    expected = np.zeros((4, 3), dtype=np.float64)
    for unit in REDUCTIONS[reduce]:
        expected[unit] = (h[:, None] * x).sum(0)
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=0)
