"""torch's ``nn.TransformerEncoder`` (2 layers, 4 heads), exported by the legacy
TorchScript exporter, imports with one ``attention`` node per layer and matches
onnxruntime on the original file within 1e-4 relative on every backend, with
``batch_first=True`` and ``False`` (a time-major graph: the nnc model takes and
gives batch-first values). Attention with a mask is refused, naming the node."""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import pytest

from tests.backends.onnx.test_roundtrip import available_backends
from tests.conftest import require

TOLERANCE = 1e-4
D, HEADS, FF, LAYERS, T, N = 16, 4, 32, 2, 5, 2


@pytest.fixture(autouse=True)
def _frameworks(one_torch_thread: None) -> None:
    for module in ("torch", "onnx", "onnxruntime"):
        require(module)


def _encoder(batch_first: bool, norm_first: bool = False) -> Any:
    import torch

    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(
        D, HEADS, FF, dropout=0.1, batch_first=batch_first, norm_first=norm_first
    )
    encoder = torch.nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False).eval()
    with torch.no_grad():  # biases and norms away from torch's zeros and ones
        for p in encoder.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return encoder


def _export(module: Any, x: np.ndarray, mask: Any = None, opset: int = 17) -> bytes:
    import torch

    args: tuple[Any, ...] = (torch.from_numpy(x),) if mask is None else (torch.from_numpy(x), mask)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            module,
            args,
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=["x"],
            output_names=["y"],
        )
    return buffer.getvalue()


@pytest.mark.parametrize("norm_first", [False, True], ids=["post_norm", "pre_norm"])
@pytest.mark.parametrize("batch_first", [True, False], ids=["batch_first", "time_major"])
def test_torch_transformer_encoder_imports_as_attention(
    batch_first: bool, norm_first: bool
) -> None:
    from nnc.backends import get_backend
    from nnc.backends import onnx as backend
    from nnc.backends.onnx.runtime import open_session, run_session
    from nnc.backends.onnx.verify import compare_with_original

    encoder = _encoder(batch_first, norm_first)
    x = np.random.default_rng(1).normal(size=(N, T, D)).astype(np.float32)  # batch-first
    feed = x if batch_first else np.ascontiguousarray(x.transpose(1, 0, 2))
    data = _export(encoder, feed)
    want = run_session(open_session(data, threads=1), {"x": feed})[0].astype(np.float64)
    if not batch_first:
        want = want.transpose(1, 0, 2)
    imported = backend.import_model(data)
    model = imported.program.models[imported.model]
    assert [n.op for n in model.nodes].count("attention") == LAYERS
    assert all(n.heads == HEADS for n in model.nodes if n.op == "attention")
    torch_params = sum(p.numel() for p in encoder.parameters())
    assert sum(a.size for a in imported.weights.values()) == torch_params
    runtimes = {
        "onnx": backend.build(imported.program, imported.model, imported.weights, threads=1)
    }
    for name in available_backends():
        runtimes[name] = get_backend(name).build(imported.program, imported.model, imported.weights)
    scale = max(1.0, float(np.abs(want).max()))
    for name, runtime in runtimes.items():
        got = np.asarray(runtime.forward(x), dtype=np.float64)
        deviation = float(np.abs(got - want).max()) / scale
        assert deviation < TOLERANCE, f"{name}: max relative deviation {deviation:.2e}"
    assert compare_with_original(data, imported) < TOLERANCE  # what `nnc import` checks


def test_masked_attention_is_refused_naming_the_node() -> None:
    import torch

    from nnc.backends import onnx as backend
    from nnc.backends.onnx.reader import OnnxImportError

    encoder = _encoder(batch_first=True)
    x = np.random.default_rng(1).normal(size=(N, T, D)).astype(np.float32)
    causal = torch.nn.Transformer.generate_square_subsequent_mask(T)
    data = _export(encoder, x, causal)
    with pytest.raises(OnnxImportError) as caught:
        backend.import_model(data)
    message = str(caught.value)
    assert message.startswith("node '/layers.0/self_attn/MatMul' (MatMul): starts what reads")
    assert "Add" in message and "without attn_mask" in message


@pytest.mark.parametrize("opset", [14, 16, 20])
@pytest.mark.parametrize("batch_first", [True, False], ids=["batch_first", "time_major"])
def test_encoder_imports_at_other_opsets(batch_first: bool, opset: int) -> None:
    """Below opset 17 the exporter writes layer norm out (ReduceMean, Sub, Pow, Div,
    Mul, Add), which time-major values go through position by position (opset 14 is
    the first the legacy exporter writes this attention for); numpy against
    onnxruntime."""
    from nnc.backends import get_backend
    from nnc.backends import onnx as backend
    from nnc.backends.onnx.runtime import open_session, run_session

    x = np.random.default_rng(2).normal(size=(N, T, D)).astype(np.float32)
    feed = x if batch_first else np.ascontiguousarray(x.transpose(1, 0, 2))
    data = _export(_encoder(batch_first), feed, opset=opset)
    want = run_session(open_session(data, threads=1), {"x": feed})[0].astype(np.float64)
    if not batch_first:
        want = want.transpose(1, 0, 2)
    imported = backend.import_model(data)
    runtime = get_backend("numpy").build(imported.program, imported.model, imported.weights)
    got = np.asarray(runtime.forward(x), dtype=np.float64)
    deviation = float(np.abs(got - want).max()) / max(1.0, float(np.abs(want).max()))
    assert deviation < TOLERANCE, f"max relative deviation {deviation:.2e}"
