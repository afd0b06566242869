"""Export a torch module to ONNX, import it into nnc, and compare every backend's
forward pass with onnxruntime on the original file. Shared by the tests and by
benchmarks/import_architectures.py."""

from __future__ import annotations

import io
import re
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BACKENDS = ("numpy", "torch", "tensorflow", "onnx")


def export(module: Any, shape: tuple[int, ...], opset: int, training: Any = None) -> bytes:
    """``torch.onnx.export`` by the TorchScript exporter (``dynamo=False``); eval mode
    folds each batchnorm that follows a conv into it, ``training`` PRESERVE keeps it."""
    import torch

    options: dict[str, Any] = {} if training is None else {"training": training}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            module,
            (torch.zeros(*shape),),
            buffer,  # type: ignore[arg-type]
            dynamo=False,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "N"}, "y": {0: "N"}},
            opset_version=opset,
            **options,
        )
    return buffer.getvalue()


@dataclass
class Result:
    params: int
    import_s: float
    deviation: dict[str, float] = field(default_factory=dict)  # max|diff| / max|ref|
    seconds: dict[str, float] = field(default_factory=dict)  # one forward, after a warm-up
    reference_s: float = 0.0  # onnxruntime on the original file
    lines: tuple[int, int] = (0, 0)  # the spec's lines, flat and as run
    blocks: dict[str, int] = field(default_factory=dict)  # block -> its calls


def import_and_compare(
    data: bytes,
    x: np.ndarray,
    backends: tuple[str, ...] = BACKENDS,
    threads: int = 1,
    warm_up: bool = True,
    blocks: bool = False,
) -> Result:
    """``warm_up``: one forward before the timed one (graph tracing, allocation); the
    tests leave it out, so their one forward also traces. ``blocks``: the backends
    run the spec as ``nnc import`` writes it, each repeated unit a block
    (import_blocks.with_blocks), and numpy's outputs from it must be the flat spec's,
    bit for bit (the result's ``lines`` and ``blocks`` describe it); otherwise the
    flat spec."""
    import nnc
    from nnc.backends import get_backend
    from nnc.backends import onnx as onnx_backend
    from nnc.backends.onnx.import_blocks import with_blocks
    from nnc.backends.onnx.runtime import open_session, run_session

    session = open_session(data, threads=threads)
    start = time.perf_counter()
    (want,) = run_session(session, {"x": x})
    reference_s = time.perf_counter() - start
    start = time.perf_counter()
    imported = onnx_backend.import_model(data)
    flat = nnc.format(imported.program)
    text, weights = flat, imported.weights
    if blocks:
        text, weights = with_blocks(imported.program, imported.model, imported.weights)
    program = nnc.parse(text)  # the written spec checks
    import_s = time.perf_counter() - start
    result = Result(nnc.count_params(program, imported.model), import_s, reference_s=reference_s)
    result.lines = (len(flat.splitlines()), len(text.splitlines()))
    result.blocks = {b: text.count(f"= {b}(") for b in re.findall(r"^block (\w+)", text, re.M)}
    if blocks:
        numpy = get_backend("numpy")
        unchanged = numpy.build(imported.program, imported.model, imported.weights).forward(x)
        got = numpy.build(program, imported.model, weights).forward(x)
        if not np.array_equal(np.asarray(got), np.asarray(unchanged)):
            raise AssertionError("the spec with blocks computes other outputs than the flat one")
    scale = float(np.abs(want).max())
    for name in backends:
        backend = get_backend(name)
        options = {"threads": threads} if name == "onnx" else {}
        runtime = backend.build(program, imported.model, weights, **options)
        if warm_up:
            runtime.forward(x)
        start = time.perf_counter()
        got = np.asarray(runtime.forward(x), dtype=np.float64)
        result.seconds[name] = time.perf_counter() - start
        result.deviation[name] = float(np.abs(got - want).max()) / scale
    return result
