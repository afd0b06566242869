"""The layout ops' variants on every backend (and ONNX at opsets 11, 13 and 18)
against the independent float64 loop reference (``tests/backends/layout_reference``).

The variants take each lowering's other paths: torch's F.pad against its indexed
reflect and edge pads, TensorFlow's gathered edge pads, negative steps on several
axes, the default perm and squeeze, broadcasts with and without new axes, and split's
outputs. These ops only move float32 values, so every backend must equal the
reference exactly: the largest deviation is printed and asserted to be 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import nnc
from nnc.backends import get_backend
from tests.backends import layout_reference
from tests.conftest import require

VARIANTS = {
    "transpose 4-d": "input x: [2, 3, 4, 5]\n    transpose([3, 1, 0, 2])",
    "transpose default": "input x: [2, 3, 4]\n    transpose",
    "squeeze default": "input x: [1, 3, 1, 2]\n    squeeze",
    "unsqueeze three axes": "input x: [3, 2]\n    unsqueeze([0, 2, -1])",
    "slice two negative steps": "input x: [5, 6, 3]\n    slice(axes = [0, 2, 1], "
    "starts = [-1, 2, 9], stops = [-100, 0, 1], steps = [-2, -1, -3])",
    "slice clamped forward": "input x: [5, 6]\n    slice(axes = [1], starts = [-100], "
    "stops = [100], steps = [4])",
    "split three ways": "input x: [2, 7]\n    a, b, c = x |> split(axis = 1, sizes = [1, 4, 2])\n"
    "    output c, a, b",
    "pad constant every axis": "input x: [2, 3, 4]\n    pad([1, 0, 2, 0, 3, 1], value = 0.5)",
    "pad reflect spatial (F.pad)": "input x: [2, 4, 5]\n    pad([0, 3, 1, 0, 2, 4], "
    "mode = reflect)",
    "pad reflect channels (indexed)": "input x: [4, 3, 2]\n    pad([2, 0, 1, 3, 0, 0], "
    "mode = reflect)",
    "pad edge spatial (F.pad)": "input x: [2, 3]\n    pad([0, 4, 0, 1], mode = edge)",
    "pad edge channels (indexed, gathered)": "input x: [3, 2, 2]\n    pad([4, 0, 1, 2, 1, 0], "
    "mode = edge)",
    "tile 3-d": "input x: [2, 1, 3]\n    tile([2, 3, 1])",
    "broadcast_to same rank": "input x: [1, 3]\n    broadcast_to([4, 3])",
    "broadcast_to two new axes": "input x: [3, 1]\n    broadcast_to([2, 1, 3, 5])",
}

BACKENDS: list[tuple[str, dict[str, Any]]] = [
    ("numpy", {}),
    ("torch", {}),
    ("tensorflow", {}),
    ("onnx", {"opset": 11}),
    ("onnx", {"opset": 13}),
    ("onnx", {"opset": 18}),
]
FRAMEWORK = {"numpy": "numpy", "torch": "torch", "tensorflow": "tensorflow", "onnx": "onnxruntime"}


def _reference(program: nnc.Program, x: np.ndarray) -> list[np.ndarray]:
    model = program.models["T"]
    values = {"x": x.astype(np.float64)}
    for node in model.nodes:
        values[node.name] = layout_reference.evaluate(node, values[node.inputs[0]])
    return [values[o] for o in model.outputs]


@pytest.mark.parametrize(("backend", "options"), BACKENDS, ids=lambda v: str(v))
@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_equals_reference_exactly(name: str, backend: str, options: dict) -> None:
    require(FRAMEWORK[backend])
    program = nnc.parse(f"model T {{\n    {VARIANTS[name]}\n}}\n")
    shape = program.models["T"].inputs[0].type.shape
    x = np.random.default_rng(1).standard_normal((3, *shape)).astype(np.float32)
    runtime = get_backend(backend).build(program, "T", {}, **options)
    got = runtime.forward(x)
    got = got if isinstance(got, tuple | list) else (got,)
    want = _reference(program, x)
    assert len(got) == len(want)
    worst = 0.0
    for g, w in zip(got, want, strict=True):
        assert np.asarray(g).shape == w.shape
        worst = max(worst, float(np.abs(np.asarray(g, np.float64) - w).max()))
    print(f"{name} on {backend} {options}: max |deviation| = {worst}")
    assert worst == 0.0
