"""layernorm(bias = false): scale only, on every backend against the float64 formula,
D parameters as torch's LayerNorm(bias=False), and an ONNX round trip that keeps it."""

from __future__ import annotations

import numpy as np
import pytest

import nnc
from nnc.ir.weights import init_weights
from tests.conftest import require

SOURCE = "model N {\n    input x: [t, 6]\n    layernorm(eps = 1e-3, bias = false)\n}\n"
FRAMEWORK = {"numpy": "numpy", "torch": "torch", "tensorflow": "tensorflow", "onnx": "onnxruntime"}


@pytest.mark.parametrize("backend", list(FRAMEWORK))
def test_scale_only_on_every_backend(backend: str) -> None:
    require(FRAMEWORK[backend])
    from nnc.backends import get_backend

    program = nnc.parse(SOURCE)
    rng = np.random.default_rng(0)
    weights = {
        k: rng.normal(size=v.shape).astype(np.float32)
        for k, v in init_weights(program, "N").items()
    }
    assert list(weights) == ["layernorm_1.weight"]
    x = rng.normal(size=(3, 4, 6)).astype(np.float32)
    x64 = x.astype(np.float64)
    mean, var = x64.mean(axis=-1, keepdims=True), x64.var(axis=-1, keepdims=True)
    want = (x64 - mean) / np.sqrt(var + 1e-3) * weights["layernorm_1.weight"]
    got = get_backend(backend).build(program, "N", weights).forward(x)
    deviation = float(np.abs(np.asarray(got, np.float64) - want).max())
    print(f"{backend}: max |deviation| {deviation:.2e}")
    assert deviation < 1e-5


def test_count_equals_torch() -> None:
    require("torch")
    import torch

    layer = torch.nn.LayerNorm(6, bias=False)
    assert (
        nnc.count_params(nnc.parse(SOURCE), "N") == sum(p.numel() for p in layer.parameters()) == 6
    )


def test_onnx_round_trip_keeps_no_bias() -> None:
    require("onnx")
    from nnc.backends import onnx as backend

    program = nnc.parse(SOURCE)
    data = backend.emit(program, "N", weights=init_weights(program, "N"))
    imported = backend.import_model(data)
    (node,) = imported.program.models[imported.model].nodes
    assert node.op == "layernorm" and node.bias is False
    assert nnc.count_params(imported.program, imported.model) == 6
