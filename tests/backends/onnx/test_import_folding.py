"""Folding before import (``nnc.backends.onnx.fold_shapes``): the shape arithmetic
PyTorch writes for ``view``/``flatten``/``reshape``, ops on constants, and float64
graphs imported in float32 with a note.

PyTorch 2.13's ``torch.onnx.export`` defaults to the dynamo exporter, which needs
onnxscript (not installed here); the TorchScript exporter is still there as
``dynamo=False`` and is what these tests use. Each import is compared against
onnxruntime on the original, on random inputs, in the NumPy backend."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nnc
from tests.backends.onnx.helpers import max_deviation, outputs_list
from tests.conftest import require

TOLERANCE = 2e-5  # float32 against onnxruntime's float32, relative to the largest output
DOUBLE_TOLERANCE = 1e-6  # float32 against the float64 original: ~1e-7 rounding
BATCH = 3


@pytest.fixture(autouse=True)
def _frameworks() -> None:
    require("onnx")
    require("onnxruntime")


def onnxruntime_outputs(data: bytes, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    from nnc.backends.onnx.runtime import open_session, run_session

    return run_session(open_session(data, threads=1), feeds)


def imports_and_matches(data: bytes, x: np.ndarray, tolerance: float = TOLERANCE) -> Any:
    """Import ``data``, rebuild it from its written spec, run it in the NumPy backend
    on ``x`` (float32) and compare with onnxruntime on the original (fed ``x`` in the
    original's dtype). Returns the import."""
    from nnc.backends import get_backend
    from nnc.backends import onnx as backend

    want = [w.astype(np.float64) for w in onnxruntime_outputs(data, {"x": x})]
    imported = backend.import_model(data)
    program = nnc.parse(nnc.format(imported.program))  # the written spec checks
    runtime = get_backend("numpy").build(program, imported.model, imported.weights)
    got = outputs_list(runtime.forward(x.astype(np.float32)))
    scale = max(1.0, *(float(np.abs(w).max()) for w in want))
    deviation = max_deviation(got, want) / scale
    assert deviation < tolerance, f"max deviation {deviation:.2e}"
    return imported


def ops(imported: Any) -> list[str]:
    return [n.op for n in imported.program.models[imported.model].nodes]


# -- models exported by PyTorch (TorchScript exporter) ------------------------------


def torch_export(
    module: Any, shape: tuple[int, ...], fold: bool = True, dtype: Any = None
) -> bytes:
    import torch

    torch.manual_seed(0)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation warning
        torch.onnx.export(
            module.eval(),
            (torch.randn(*shape, dtype=dtype or torch.float32),),
            buffer,
            dynamo=False,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "N"}},
            opset_version=17,
            do_constant_folding=fold,
        )
    return buffer.getvalue()


def _torch_modules() -> dict[str, Any]:
    import torch
    from torch import nn

    class MLPView(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(12, 5)
            self.out = nn.Linear(5, 3)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.out(torch.tanh(self.fc(x.view(x.size(0), -1))))

    class TwoViews(nn.Module):
        """A view of a viewed tensor: its Shape needs ONNX's data propagation."""

        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(12, 6)
            self.per_row = nn.Linear(3, 2)

        def forward(self, x):  # type: ignore[no-untyped-def]
            y = self.fc(x.view(x.size(0), -1))
            y = torch.tanh(self.per_row(y.view(y.size(0), 2, 3)))
            return y.reshape(y.size(0), -1)

    class CNN(nn.Module):
        def __init__(self, how: str) -> None:
            super().__init__()
            self.how = how
            self.conv = nn.Conv2d(1, 8, 3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.fc = nn.Linear(4 * 4 * 8, 3)

        def forward(self, x):  # type: ignore[no-untyped-def]
            y = self.pool(torch.relu(self.conv(x)))
            if self.how == "flatten":
                y = torch.flatten(y, 1)
            elif self.how == "reshape":
                y = y.reshape(-1, 4 * 4 * 8)
            else:  # Shape of an inner tensor, Gather and Mul of its sizes
                y = y.view(y.shape[0], y.shape[1] * y.shape[2] * y.shape[3])
            return self.fc(y)

    class UnsqueezeConstant(nn.Module):
        """``b.t().unsqueeze(0)[:, 0]``: Transpose, Unsqueeze and Gather of a buffer,
        added as the bias of a Linear without one."""

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("b", torch.randn(5, 3))
            self.fc = nn.Linear(5, 5, bias=False)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.fc(x) + self.b.t().unsqueeze(0)[:, 0, :]

    class ShuffleTwice(nn.Module):
        """ShuffleNet's channel shuffle (view, transpose, view of computed sizes), then
        a chunk and another shuffle: ONNX's data propagation alone loses the batch
        after the first, so the pass infers shapes again on the folded graph."""

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 4, 1)

        @staticmethod
        def shuffle(x):  # type: ignore[no-untyped-def]
            n, c, h, w = x.size()
            x = x.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous()
            return x.view(n, c, h, w)

        def forward(self, x):  # type: ignore[no-untyped-def]
            a, b = self.shuffle(x).chunk(2, dim=1)
            return self.shuffle(torch.cat((a, self.conv(b)), 1))

    return {
        "channel_shuffle_twice": (ShuffleTwice, (2, 4, 3, 3), True),
        "mlp_view": (MLPView, (2, 3, 4), True),
        "mlp_view_unfolded": (MLPView, (2, 3, 4), False),
        "mlp_two_views": (TwoViews, (2, 3, 4), True),
        "cnn_flatten": (lambda: CNN("flatten"), (2, 1, 8, 8), True),
        "cnn_reshape": (lambda: CNN("reshape"), (2, 1, 8, 8), True),
        "cnn_view_of_sizes": (lambda: CNN("view"), (2, 1, 8, 8), True),
        "unsqueeze_constant": (UnsqueezeConstant, (2, 5), False),
    }


TORCH_OPS = {
    "channel_shuffle_twice": [
        "reshape",
        "transpose",
        "reshape",
        "slice",
        "slice",
        "conv2d",
        "concat",
        "reshape",
        "transpose",
        "reshape",
    ],
    "mlp_view": ["flatten", "dense", "tanh", "dense"],
    "mlp_view_unfolded": ["flatten", "dense", "tanh", "dense"],
    "mlp_two_views": ["flatten", "dense", "reshape", "dense", "tanh", "flatten"],
    "cnn_flatten": ["conv2d", "relu", "maxpool", "flatten", "dense"],
    "cnn_reshape": ["conv2d", "relu", "maxpool", "flatten", "dense"],
    "cnn_view_of_sizes": ["conv2d", "relu", "maxpool", "flatten", "dense"],
    "unsqueeze_constant": ["dense"],
}


@pytest.mark.parametrize("case", sorted(TORCH_OPS))
def test_torch_export_imports_and_matches_onnxruntime(case: str) -> None:
    require("torch")
    make, shape, fold = _torch_modules()[case]
    data = torch_export(make(), shape, fold)
    x = np.random.default_rng(1).normal(size=(BATCH, *shape[1:])).astype(np.float32)
    imported = imports_and_matches(data, x)
    assert ops(imported) == TORCH_OPS[case]
    assert imported.notes == []


def test_torch_view_exports_shape_arithmetic() -> None:
    """What the pass is for: the export reads Shape, and the import no longer does."""
    require("torch")
    import onnx

    make, shape, _ = _torch_modules()["mlp_view"]
    data = torch_export(make(), shape)
    exported = [n.op_type for n in onnx.load_from_string(data).graph.node]
    assert exported[:3] == ["Shape", "Constant", "Gather"] and "Concat" in exported


def test_torch_float64_model() -> None:
    require("torch")
    import torch

    make, shape, _ = _torch_modules()["mlp_view"]
    data = torch_export(make().double(), shape, dtype=torch.float64)
    x = np.random.default_rng(2).normal(size=(BATCH, *shape[1:]))
    imported = imports_and_matches(data, x, DOUBLE_TOLERANCE)
    assert imported.notes == [double_note("graph input 'x' is", 4)]


# -- graphs built with onnx.helper, one per folded pattern ----------------------------


def hand_model(nodes: list[Any], x: Any, y: Any, initializers: dict[str, np.ndarray]) -> bytes:
    """A checked opset-17 model; initializers keep their dtype."""
    from onnx import checker, helper, numpy_helper

    tensors = [numpy_helper.from_array(v, k) for k, v in initializers.items()]
    graph = helper.make_graph(nodes, "folding", [x], [y], initializer=tensors)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    checker.check_model(model, full_check=True)
    return model.SerializeToString()


def node(op: str, inputs: list[str], output: str, **attributes: Any) -> Any:
    from onnx import helper

    return helper.make_node(op, inputs, [output], name=output, **attributes)


def ints(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def tensor(name: str, shape: list[Any], double: bool = False) -> Any:
    from onnx import TensorProto, helper

    kind = TensorProto.DOUBLE if double else TensorProto.FLOAT
    return helper.make_tensor_value_info(name, kind, shape)


RNG = np.random.default_rng(3)
W = RNG.normal(0, 0.5, (4, 3)).astype(np.float32)  # MatMul's [in, out]


def _shape_slice_concat() -> tuple[bytes, list[int], list[str]]:
    """Shape -> Slice(0:1) -> Concat([N], [12, 2]) -> Reshape: nnc's reshape."""
    nodes = [
        node("Shape", ["x"], "s"),
        node("Slice", ["s", "zero", "one"], "n"),
        node("Concat", ["n", "rest"], "target", axis=0),
        node("Reshape", ["x", "target"], "y"),
    ]
    inits = {"zero": ints(0), "one": ints(1), "rest": ints(12, 2)}
    data = hand_model(nodes, tensor("x", ["N", 2, 3, 4]), tensor("y", ["N", 12, 2]), inits)
    return data, [2, 3, 4], ["reshape"]


def _gather_squeeze_cast_arithmetic() -> tuple[bytes, list[int], list[str]]:
    """Shape -> Cast(int32) -> Gather -> Cast(int64); sizes multiplied, divided and
    subtracted; Squeeze/Unsqueeze of the batch entry; a Constant node; a batch
    entry times 1; Flatten to the result."""
    from onnx import TensorProto

    nodes = [
        node("Shape", ["x"], "s"),
        node("Cast", ["s"], "s32", to=TensorProto.INT32),
        node("Gather", ["s32", "middle"], "hw"),  # [3, 4]
        node("Cast", ["hw"], "hw64", to=TensorProto.INT64),
        node("Slice", ["hw64", "zero", "one"], "h"),
        node("Slice", ["hw64", "one", "two"], "w"),
        node("Mul", ["h", "w"], "hw_size"),  # 12
        node("Div", ["hw_size", "two"], "half"),  # 6
        node("Sub", ["half", "one"], "five_"),  # 5
        node("Add", ["five_", "one"], "six"),  # 6
        node("Gather", ["s", "zero_scalar"], "n0"),
        node("Mul", ["n0", "one_scalar"], "n1"),  # N * 1 stays the batch
        node("Unsqueeze", ["n1", "zero"], "n2"),
        node("Squeeze", ["n2", "zero"], "n3"),
        node("Unsqueeze", ["n3", "zero"], "n"),
        node("Constant", [], "channels", value_ints=[2]),
        node("Concat", ["n", "channels", "six", "two"], "target", axis=0),
        node("Reshape", ["x", "target"], "r"),  # [N, 2, 6, 2]
        node("Flatten", ["r"], "y"),
    ]
    inits = {
        "middle": ints(2, 3),
        "zero": ints(0),
        "one": ints(1),
        "two": ints(2),
        "zero_scalar": np.array(0, dtype=np.int64),
        "one_scalar": np.array(1, dtype=np.int64),
    }
    data = hand_model(nodes, tensor("x", ["N", 2, 3, 4]), tensor("y", ["N", 24]), inits)
    return data, [2, 3, 4], ["flatten"]


def _symbolic_length() -> tuple[bytes, list[int], list[str]]:
    """[N, t, 4] -> Reshape to [N, t * 4]: one size unknown at import, so the
    target becomes [0, -1] (copy the batch, infer the rest)."""
    nodes = [
        node("Shape", ["x"], "s"),
        node("Gather", ["s", "zero"], "n"),
        node("Gather", ["s", "one"], "t"),
        node("Mul", ["t", "four"], "t4"),
        node("Concat", ["n", "t4"], "target", axis=0),
        node("Reshape", ["x", "target"], "y"),
    ]
    inits = {"zero": ints(0), "one": ints(1), "four": ints(4)}
    data = hand_model(nodes, tensor("x", ["N", "t", 4]), tensor("y", ["N", "t4"]), inits)
    return data, [5, 4], ["flatten"]


def _inner_shape_view() -> tuple[bytes, list[int], list[str]]:
    """Shape of an inner tensor (MatMul's output, from ONNX shape inference) and
    x.view(x.size(0), -1) of it: [N, 2, 3] -> [N, 6] -> dense."""
    nodes = [
        node("MatMul", ["x", "w"], "h"),  # [N, 2, 3]
        node("Shape", ["h"], "s"),
        node("Gather", ["s", "zero"], "n"),
        node("Concat", ["n", "minus_one"], "target", axis=0),
        node("Reshape", ["h", "target"], "flat"),
        node("MatMul", ["flat", "w2"], "y"),
    ]
    w2 = RNG.normal(0, 0.5, (6, 2)).astype(np.float32)
    inits = {"w": W, "zero": ints(0), "minus_one": ints(-1), "w2": w2}
    data = hand_model(nodes, tensor("x", ["N", 2, 4]), tensor("y", ["N", 2]), inits)
    return data, [2, 4], ["dense", "flatten", "dense"]


def _constants() -> tuple[bytes, list[int], list[str]]:
    """Transpose of an initializer as MatMul's weight; Unsqueeze of a Constant node,
    ConstantOfShape, Flatten, Neg and Sqrt of constants as its bias."""
    from onnx import numpy_helper

    nodes = [
        node("Transpose", ["w_t"], "w", perm=[1, 0]),
        node("MatMul", ["x", "w"], "h"),
        node(
            "Constant",
            [],
            "b",
            value=numpy_helper.from_array(RNG.normal(size=3).astype(np.float32)),
        ),
        node("Unsqueeze", ["b", "zero"], "b2"),  # [1, 3]
        node(
            "ConstantOfShape",
            ["bias_shape"],
            "fill",
            value=numpy_helper.from_array(np.array([0.25], np.float32)),
        ),  # [1, 1, 3] of 0.25
        node("Flatten", ["fill"], "fill2"),  # [1, 3]
        node("Sqrt", ["fill2"], "half"),  # 0.5
        node("Neg", ["half"], "minus_half"),
        node("Add", ["b2", "minus_half"], "bias"),
        node("Add", ["h", "bias"], "y"),
    ]
    inits = {"w_t": np.ascontiguousarray(W.T), "zero": ints(0), "bias_shape": ints(1, 1, 3)}
    data = hand_model(nodes, tensor("x", ["N", 4]), tensor("y", ["N", 3]), inits)
    return data, [4], ["dense"]


HAND_CASES = {
    "shape_slice_concat": _shape_slice_concat,
    "gather_squeeze_cast_arithmetic": _gather_squeeze_cast_arithmetic,
    "symbolic_length": _symbolic_length,
    "inner_shape_view": _inner_shape_view,
    "constants": _constants,
}


@pytest.mark.parametrize("case", sorted(HAND_CASES))
def test_hand_built_pattern_folds(case: str) -> None:
    data, sample, want = HAND_CASES[case]()
    x = np.random.default_rng(4).normal(size=(BATCH, *sample)).astype(np.float32)
    imported = imports_and_matches(data, x)
    assert ops(imported) == want


def test_folded_values_and_counts() -> None:
    """The pass on its own: what it removes and the constant target it writes."""
    import onnx

    from nnc.backends.onnx.fold_shapes import fold_graph
    from nnc.backends.onnx.reader import load_graph

    data, _, _ = _gather_squeeze_cast_arithmetic()
    graph = load_graph(onnx.load_from_string(data), "test")
    done = fold_graph(graph, {})
    assert (done.nodes, done.reshapes) == (16, 1)
    assert [n.op_type for n in graph.nodes] == ["Reshape", "Flatten"]
    assert graph.consts[graph.nodes[0].input[1]].tolist() == [0, 2, 6, 2]  # copy the batch
    data, _, _ = _symbolic_length()
    graph = load_graph(onnx.load_from_string(data), "test")
    fold_graph(graph, {})
    assert graph.consts[graph.nodes[0].input[1]].tolist() == [0, -1]


# -- float64 graphs ------------------------------------------------------------------


def double_note(which: str, constants: int) -> str:
    return (
        f"{which} float64 (DOUBLE); nnc computes in float32, so the graph is cast to "
        f"float32: the model takes float32 inputs, and its {constants} float64 constants "
        "are stored as float32. float32 keeps about 7 significant digits of float64's 16: "
        "expect outputs to differ from the original by about 1e-7 relative, more through "
        "long or ill-conditioned chains"
    )


def _double_model() -> bytes:
    w = RNG.normal(0, 0.5, (4, 3))
    b = RNG.normal(0, 0.5, 3)
    nodes = [
        node("MatMul", ["x", "w"], "h"),
        node("Add", ["h", "b"], "z"),
        node("Tanh", ["z"], "y"),
    ]
    return hand_model(
        nodes, tensor("x", ["N", 4], True), tensor("y", ["N", 3], True), {"w": w, "b": b}
    )


def test_double_model_imports_with_a_note() -> None:
    x = np.random.default_rng(5).normal(size=(BATCH, 4))
    imported = imports_and_matches(_double_model(), x, DOUBLE_TOLERANCE)
    assert ops(imported) == ["dense", "tanh"]
    assert imported.notes == [double_note("graph input 'x' is", 2)]
    assert imported.program.models[imported.model].inputs[0].type.dtype == "float32"
    assert all(w.dtype == np.float32 for w in imported.weights.values())


def test_double_note_is_printed_by_nnc_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nnc.cli.main import main

    model = tmp_path / "double.onnx"
    model.write_bytes(_double_model())
    code = main(["import", str(model), "-o", str(tmp_path / "double.nn")])
    err = capsys.readouterr().err
    assert code == 0, err
    # The self-check feeds the float64 original float64 values.
    assert "checked: the same outputs as the original in onnxruntime on a random batch of 4" in err
    note = double_note("graph input 'x' is", 2)
    assert f"note: {note}\n" in err


# -- what cannot be folded -------------------------------------------------------------


def _refused(target_nodes: list[Any], x: Any, y: Any, read_by: str = "Reshape") -> str:
    from nnc.backends import onnx as backend
    from nnc.backends.onnx.reader import OnnxImportError

    last = node(read_by, ["x", "target"], "r")
    inits = {"zero": ints(0), "one": ints(1), "two": ints(2), "four": ints(4)}
    data = hand_model([*target_nodes, last, node("Identity", ["r"], "y")], x, y, inits)
    with pytest.raises(OnnxImportError) as caught:
        backend.import_model(data)
    return caught.value.message


def test_two_unknown_sizes_are_refused_naming_the_reshape() -> None:
    nodes = [
        node("Shape", ["x"], "s"),
        node("Gather", ["s", "zero"], "n"),
        node("Gather", ["s", "one"], "t"),
        node("Gather", ["s", "two"], "u"),
        node("Mul", ["u", "four"], "u4"),
        node("Concat", ["n", "t", "u4"], "target", axis=0),
    ]
    message = _refused(nodes, tensor("x", ["N", "t", "u", 4]), tensor("y", ["N", "t", "v"]))
    assert message == (
        "node 'r' (Reshape): its target shape ('target') is computed from tensor shapes as "
        "[N, t, ?], which nnc cannot fold into a static per-sample shape: more than one "
        "size is unknown at import time (t, ?)"
    )


def test_a_batch_moved_from_the_front_is_refused() -> None:
    nodes = [
        node("Shape", ["x"], "s"),
        node("Gather", ["s", "zero"], "n"),
        node("Concat", ["four", "n"], "target", axis=0),
    ]
    message = _refused(nodes, tensor("x", ["N", 4]), tensor("y", [4, "N"]))
    assert message == (
        "node 'r' (Reshape): its target shape ('target') is computed from tensor shapes as "
        "[4, N], which nnc cannot fold into a static per-sample shape: the batch size must "
        "be its first entry, once"
    )


def test_a_shape_read_by_another_op_is_refused() -> None:
    nodes = [
        node("Shape", ["x"], "s"),
        node("Gather", ["s", "zero"], "n"),
        node("Concat", ["n", "four"], "target", axis=0),
    ]
    message = _refused(nodes, tensor("x", ["N", 1]), tensor("y", ["N", 4]), read_by="Expand")
    assert message == (
        "node 'r' (Expand): its input 'target' is computed from tensor shapes as [N, 4], "
        "which holds a size unknown at import time; nnc folds shape arithmetic into "
        "constants and into Reshape targets that keep the batch first"
    )
