"""Import of the layout ops built with ``onnx.helper`` (Transpose, Squeeze,
Unsqueeze, Slice, Split, Pad, Tile, Expand) at the opsets where their integers move
from attributes to inputs: the imported model, run on the NumPy backend, equals
onnxruntime exactly (these ops only move values); an op that touches the batch axis
is refused, naming it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.conftest import require

INT64_MAX = int(np.iinfo(np.int64).max)
INT64_MIN = int(np.iinfo(np.int64).min)


@pytest.fixture(autouse=True)
def _frameworks() -> None:
    require("onnx")
    require("onnxruntime")


def _graph(
    nodes: list[tuple[str, list[str], list[str], dict[str, Any]]],
    shape: list[int],
    consts: dict[str, Any],
    outputs: list[str],
    opset: int,
) -> bytes:
    from onnx import TensorProto, helper, numpy_helper, shape_inference

    made = [
        helper.make_node(op, ins, outs, name=f"n{k}", **attrs)
        for k, (op, ins, outs, attrs) in enumerate(nodes)
    ]
    graph = helper.make_graph(
        made,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *shape])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    # The outputs' shapes, as ONNX infers them ("N" stays symbolic).
    inferred = shape_inference.infer_shapes(model)
    known = {v.name: v for v in (*inferred.graph.value_info, *inferred.graph.output)}
    del model.graph.output[:]
    model.graph.output.extend(known[o] for o in outputs)
    return model.SerializeToString()


def _one(
    op: str,
    shape: list[int],
    opset: int,
    consts: dict[str, Any] | None = None,
    outputs: int = 1,
    **attrs: Any,
) -> bytes:
    consts = consts or {}
    outs = ["y"] if outputs == 1 else [f"y{k}" for k in range(outputs)]
    return _graph([(op, ["x", *consts], outs, attrs)], shape, consts, outs, opset)


def _ints(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


def _import_and_run(data: bytes, shape: list[int]) -> tuple[float, list[str]]:
    """The largest |nnc - onnxruntime| over every output, and the imported ops."""
    from nnc.backends import get_backend
    from nnc.backends import onnx as backend
    from nnc.backends.onnx.runtime import open_session, run_session

    x = np.random.default_rng(0).standard_normal((3, *shape)).astype(np.float32)
    want = run_session(open_session(data, threads=1), {"x": x})
    imported = backend.import_model(data)
    runtime = get_backend("numpy").build(imported.program, imported.model, imported.weights)
    got = runtime.forward(x)
    got = got if isinstance(got, tuple | list) else (got,)
    assert len(got) == len(want)
    worst = 0.0
    for g, w in zip(got, want, strict=True):
        assert np.asarray(g).shape == w.shape
        worst = max(worst, float(np.abs(np.asarray(g) - w).max()))
    ops = [n.op for n in imported.program.models[imported.model].nodes]
    return worst, ops


CASES = {
    "Transpose of data axes": (
        _one("Transpose", [2, 3, 4], 13, perm=[0, 2, 3, 1]),
        [2, 3, 4],
        ["transpose"],
    ),
    "Squeeze (attribute, opset 11) then Transpose": (
        _graph(
            [
                ("Squeeze", ["x"], ["s"], {"axes": [2]}),
                ("Transpose", ["s"], ["y"], {"perm": [0, 2, 1]}),
            ],
            [2, 1, 3],
            {},
            ["y"],
            11,
        ),
        [2, 1, 3],
        ["reshape", "transpose"],
    ),
    "Unsqueeze (input, opset 13) then Tile": (
        _graph(
            [("Unsqueeze", ["x", "axes"], ["u"], {}), ("Tile", ["u", "reps"], ["y"], {})],
            [2, 3],
            {"axes": _ints(2), "reps": _ints(1, 1, 2, 2)},
            ["y"],
            13,
        ),
        [2, 3],
        ["reshape", "tile"],
    ),
    "Squeeze (input, opset 13) then Transpose": (
        _graph(
            [
                ("Squeeze", ["x", "axes"], ["s"], {}),
                ("Transpose", ["s"], ["y"], {"perm": [0, 2, 1]}),
            ],
            [2, 1, 3],
            {"axes": _ints(-2)},
            ["y"],
            13,
        ),
        [2, 1, 3],
        ["reshape", "transpose"],
    ),
    "Unsqueeze (attribute, opset 11) then Pad": (
        _graph(
            [
                ("Unsqueeze", ["x"], ["u"], {"axes": [1]}),
                ("Pad", ["u", "pads"], ["y"], {"mode": "edge"}),
            ],
            [2, 3],
            {"pads": _ints(0, 0, 0, 1, 0, 0, 0, 2)},
            ["y"],
            11,
        ),
        [2, 3],
        ["reshape", "pad"],
    ),
    "Slice, negative step and axis, INT64 ends, full batch": (
        _one(
            "Slice",
            [4, 6],
            13,
            {
                "starts": _ints(0, 5, 1),
                "ends": _ints(INT64_MAX, INT64_MIN, 3),
                "axes": _ints(0, -1, 1),
                "steps": _ints(1, -2, 1),
            },
        ),
        [4, 6],
        ["slice"],
    ),
    "Slice without steps (opset 11)": (
        _one("Slice", [5, 3], 11, {"starts": _ints(-3), "ends": _ints(100), "axes": _ints(1)}),
        [5, 3],
        ["slice"],
    ),
    "Split, attribute (opset 11)": (
        _one("Split", [5, 3], 11, outputs=2, axis=1, split=[2, 3]),
        [5, 3],
        ["slice", "slice"],
    ),
    "Split, input (opset 13), negative axis": (
        _one("Split", [3, 5], 13, {"split": _ints(1, 4)}, outputs=2, axis=-1),
        [3, 5],
        ["slice", "slice"],
    ),
    "Split, equal pieces (opset 18)": (
        _one("Split", [2, 6], 18, outputs=3, axis=2, num_outputs=3),
        [2, 6],
        ["slice", "slice", "slice"],
    ),
    "Pad reflect (opset 11)": (
        _one("Pad", [2, 3, 4], 11, {"pads": _ints(0, 0, 2, 1, 0, 1, 0, 3)}, mode="reflect"),
        [2, 3, 4],
        ["pad"],
    ),
    "Pad edge (opset 13)": (
        _one("Pad", [2, 3], 13, {"pads": _ints(0, 2, 1, 0, 0, 3)}, mode="edge"),
        [2, 3],
        ["pad"],
    ),
    "Pad constant value (opset 13)": (
        _one(
            "Pad", [2, 3], 13, {"pads": _ints(0, 1, 0, 0, 0, 2), "value": np.array(1.5, np.float32)}
        ),
        [2, 3],
        ["pad"],
    ),
    "Tile": (_one("Tile", [2, 3], 13, {"repeats": _ints(1, 3, 2)}), [2, 3], ["tile"]),
    "Expand, same rank": (
        _one("Expand", [3, 1], 13, {"shape": _ints(1, 3, 4)}),
        [3, 1],
        ["broadcast_to"],
    ),
    "Expand, lower-rank shape": (
        _one("Expand", [3, 1], 13, {"shape": _ints(1, 5)}),
        [3, 1],
        ["broadcast_to"],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_imports_and_matches_onnxruntime_exactly(name: str) -> None:
    data, shape, ops = CASES[name]
    worst, got = _import_and_run(data, shape)
    assert worst == 0.0, f"{name}: max |nnc - onnxruntime| = {worst}"
    assert got == ops


REFUSED = {
    "Transpose moving the batch": (
        _one("Transpose", [2, 3], 13, perm=[2, 1, 0]),
        "perm=[2, 1, 0] is not supported: it moves the batch axis (axis 0) to axis 2",
    ),
    "Slice of the batch": (
        _one("Slice", [4], 13, {"starts": _ints(1), "ends": _ints(3), "axes": _ints(0)}),
        "slices the batch axis (axis 0: starts 1, ends 3, steps 1)",
    ),
    "Split of the batch": (
        _one("Split", [4], 13, {"split": _ints(1, 2)}, outputs=2, axis=0),
        "attribute axis=0 is not supported: it splits the batch axis (axis 0)",
    ),
    "Pad of the batch": (
        _one("Pad", [4], 13, {"pads": _ints(1, 0, 0, 0)}),
        "pads [1, 0, 0, 0] pad the batch axis (axis 0)",
    ),
    "Pad wrap": (
        _one("Pad", [4], 19, {"pads": _ints(0, 1, 0, 1)}, mode="wrap"),
        "attribute mode='wrap' is not supported",
    ),
    "Pad reflect too wide": (
        _one("Pad", [2, 3], 13, {"pads": _ints(0, 0, 3, 0, 0, 0)}, mode="reflect"),
        "reflect pads must be smaller than the axis: axis 1 of [2, 3] has size 3, pads (3, 0)",
    ),
    "Tile of the batch": (
        _one("Tile", [4], 13, {"repeats": _ints(2, 1)}),
        "repeats [2, 1] repeat the batch axis (axis 0)",
    ),
    "Expand of the batch": (
        _one("Expand", [4], 13, {"shape": _ints(3, 4)}),
        "shape [3, 4] broadcasts the batch axis (axis 0)",
    ),
    "Expand before the batch": (
        _one("Expand", [4], 13, {"shape": _ints(2, 1, 4)}),
        "new axes would go before the batch axis (axis 0)",
    ),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_batch_axis_and_unsupported_forms_are_refused(name: str) -> None:
    from nnc.backends import onnx as backend
    from nnc.errors import NncError

    data, message = REFUSED[name]
    with pytest.raises(NncError) as err:
        backend.import_model(data)
    assert message in err.value.message
