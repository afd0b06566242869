"""ReLU in place in the generated PyTorch code: only over a fresh tensor that nothing
else reads and whose producer's backward never reads it, with the same numbers."""

from __future__ import annotations

import numpy as np

import nnc
from nnc.backends import torch as backend
from nnc.verify.cases import build, make_case

SKIP = """
model Skip {
    input x: [3, 6, 6]
    a = x |> conv2d(4, kernel = 3, padding = same)
    b = a |> relu
    c = a |> batchnorm |> relu
    d = b + c
    output d |> relu |> global_avg_pool |> dense(2) |> relu
}

train Skip {
    data      "skip.npz"
    loss      sse
    optimizer adam(lr = 0.01)
}
"""


def test_relu_is_in_place_only_where_nothing_else_reads_its_input() -> None:
    code = backend.emit(nnc.parse(SKIP, "skip.nn"))
    forward = code.split("class Skip(nn.Module)")[1].split("def compute_loss")[0]
    lines = [line.strip() for line in forward.splitlines() if "F.relu" in line]
    # after the conv read twice: not in place; after the batchnorm: not in place; after
    # the sum and after the dense layer: in place
    assert [("inplace=True" in line) for line in lines] == [False, False, True, True], lines


def test_in_place_relu_trains_to_the_numbers_of_the_numpy_backend() -> None:
    program = nnc.parse(SKIP, "skip.nn")
    case = make_case(program, "Skip", steps=3)
    runs = {b: build(b, case) for b in ("numpy", "torch")}
    (inputs, target), lr = case.batches[0], case.lrs[0]
    gradients = {b: dict(r.gradients(inputs[0], target)) for b, r in runs.items()}
    for name, g in gradients["numpy"].items():
        scale = max(float(np.abs(g).max()), 1e-12)
        assert float(np.abs(gradients["torch"][name] - g).max()) / scale < 1e-5, name
    for (inputs, target), lr in zip(case.batches, case.lrs, strict=True):
        for r in runs.values():
            r.train_step(inputs[0], target, lr)
    weights = {b: r.get_weights() for b, r in runs.items()}
    for name, w in weights["numpy"].items():
        scale = max(float(np.abs(w).max()), 1e-12)
        assert float(np.abs(weights["torch"][name] - w).max()) / scale < 1e-5, name
