"""Export after training: the torch runtime trains a few steps, its weights (batchnorm
running statistics included) are saved, exported, and onnxruntime gives torch's
outputs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc.ir.weights import init_weights, save_npz
from tests.conftest import EXAMPLES, require


@pytest.mark.parametrize("example", ["resnet_block", "sequence_lstm"])
def test_trained_torch_weights_export(example: str, tmp_path: Path) -> None:
    require("onnx")
    require("onnxruntime")
    require("torch")
    if importlib.util.find_spec("nnc.backends.torch") is None:
        # The torch backend is written on its own branch; until it is merged this test
        # has nothing to train with (it passes against that branch).
        pytest.skip("the torch backend has not been merged into this checkout yet")
    from nnc.backends import get_backend
    from nnc.backends import onnx as backend
    from nnc.backends.codegen import select
    from tests.backends.onnx.helpers import random_inputs

    program = nnc.load(EXAMPLES / f"{example}.nn")
    model, _ = select(program)
    torch_runtime = get_backend("torch").build(program, model.name)
    rng = np.random.default_rng(0)
    (x,) = random_inputs(model, batch=16)
    y = rng.normal(size=(16, *model.output_types[0].shape)).astype(np.float32)
    if example == "resnet_block":  # cross-entropy: one-hot targets
        y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 16)]
    losses = [torch_runtime.train_step(x, y, 0.01) for _ in range(5)]
    assert losses[-1] < losses[0]
    trained = torch_runtime.get_weights()
    initial = init_weights(program, model, seed=0)
    assert any(not np.array_equal(trained[k], initial[k]) for k in initial)
    path = save_npz(tmp_path / "trained.npz", trained)

    onnx_runtime = backend.build(program, model.name, weights=path, threads=1)
    got = onnx_runtime.forward(x)
    want = torch_runtime.forward(x)
    scale = max(1.0, float(np.abs(want).max()))
    assert float(np.abs(got - want).max()) / scale < 2e-5
