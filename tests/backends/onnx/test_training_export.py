"""Export after training: the torch runtime trains a few steps, its weights (batchnorm
running statistics included) are saved, exported, and onnxruntime gives torch's
outputs."""

from __future__ import annotations

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
    from nnc.backends import get_backend
    from nnc.backends import onnx as backend
    from nnc.backends.codegen import select
    from nnc.train.inference import load_trained
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

    onnx_runtime = backend.build(
        program, model.name, weights=load_trained(path, pytest.fail), threads=1
    )
    got = onnx_runtime.forward(x)
    want = torch_runtime.forward(x)
    scale = max(1.0, float(np.abs(want).max()))
    assert float(np.abs(got - want).max()) / scale < 2e-5


def test_run_folder_exports_with_its_input_standardisation(tmp_path: Path) -> None:
    """`nnc train` (NumPy backend) on a recipe with `standardize true`, then export
    from the run folder: the graph standardises raw inputs itself and gives the
    trained runtime's outputs; the importer gives the statistics back apart."""
    require("onnx")
    require("onnxruntime")
    from nnc.backends import onnx as backend
    from nnc.backends.onnx.runtime import open_session, run_session
    from nnc.backends.onnx.verify import compare_with_original
    from nnc.data.standardize import Standardizer
    from nnc.train import RunOptions, train
    from nnc.train.inference import load_trained

    program = nnc.load(EXAMPLES / "house_prices.nn")
    run = tmp_path / "run"
    result = train(program, options=RunOptions(backend="numpy", epochs=3, out=run, base=EXAMPLES))
    statistics = Standardizer.load(run / "standardize.npz")
    raw = np.random.default_rng(3).uniform(0, 100, size=(5, 6)).astype(np.float32)
    want = result.runtime.forward(statistics.apply(raw))

    def onnxruntime(data: bytes, x: np.ndarray) -> np.ndarray:
        return run_session(open_session(data, threads=1), {"features": x})[0]

    exported = backend.emit(program, weights=load_trained(run, pytest.fail), preprocess=True)
    scale = max(1.0, float(np.abs(want).max()))
    assert float(np.abs(onnxruntime(exported, raw) - want).max()) / scale < 2e-5
    bare = backend.emit(program, weights=load_trained(run, pytest.fail))
    assert float(np.abs(onnxruntime(bare, statistics.apply(raw)) - want).max()) / scale < 2e-5

    imported = backend.import_model(exported)
    assert imported.standardize is not None
    np.testing.assert_array_equal(imported.standardize[0], statistics.mean)
    np.testing.assert_array_equal(imported.standardize[1], statistics.std)
    trained = result.runtime.get_weights()
    assert all(np.array_equal(imported.weights[k], trained[k]) for k in trained)
    assert compare_with_original(exported, imported) < 1e-6
