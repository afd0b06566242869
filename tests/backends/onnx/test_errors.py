"""Errors of the ONNX backend: malformed files, unsupported ops and attributes on
import, and misuse of export and of the inference-only runtime. Messages asserted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc.errors import (
    BackendError,
    DataError,
    GraphError,
    NncError,
    ResourceError,
    WeightsError,
)
from tests.conftest import EXAMPLES, require


@pytest.fixture(autouse=True)
def _frameworks() -> None:
    require("onnx")
    require("onnxruntime")


def model_bytes(nodes, inputs, outputs, initializers=(), opset: int = 17) -> bytes:  # type: ignore[no-untyped-def]
    """A model built without the checker, so it can be malformed on purpose."""
    from onnx import helper

    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    opsets = [helper.make_opsetid("", opset)]
    ir_version = helper.find_min_ir_version_for(opsets)
    return helper.make_model(graph, opset_imports=opsets, ir_version=ir_version).SerializeToString()


def vector(name: str, *dims):  # type: ignore[no-untyped-def]
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(dims))


def import_error(data: bytes) -> NncError:
    from nnc.backends import onnx as backend

    with pytest.raises(NncError) as info:
        backend.import_model(data)
    return info.value


def one_node(
    op_type: str, inputs=("x",), dims=("N", 4), initializers=(), opset=17, **attributes
) -> bytes:  # type: ignore[no-untyped-def]
    """A graph of one node ``n1`` reading input ``x`` and writing output ``y``."""
    from onnx import helper

    node = helper.make_node(op_type, list(inputs), ["y"], name="n1", **attributes)
    return model_bytes([node], [vector("x", *dims)], [vector("y")], initializers, opset)


# -- malformed files -----------------------------------------------------------------


def test_bad_protobuf() -> None:
    err = import_error(b"\x08\x07\xff\xff\xff garbage")
    assert isinstance(err, BackendError)
    assert "is not an ONNX model: its protobuf cannot be parsed" in err.message


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    err = import_error(empty)  # type: ignore[arg-type]
    assert err.message == f"{empty} is not an ONNX model: it has no graph with outputs"


def test_missing_file(tmp_path: Path) -> None:
    from nnc.backends import onnx as backend

    with pytest.raises(NncError, match=r"no such file: .*nope\.onnx"):
        backend.import_model(tmp_path / "nope.onnx")


def test_missing_initializer() -> None:
    err = import_error(one_node("Gemm", inputs=("x", "w"), transB=1))
    assert isinstance(err, GraphError)
    assert err.message == (
        "node 'n1' (Gemm) reads 'w', which no node, graph input or initializer defines"
    )


def test_cycle() -> None:
    from onnx import helper

    nodes = [
        helper.make_node("Relu", ["b"], ["a"], name="first"),
        helper.make_node("Relu", ["a"], ["b"], name="second"),
        helper.make_node("Add", ["x", "b"], ["y"], name="out"),
    ]
    err = import_error(model_bytes(nodes, [vector("x", "N", 2)], [vector("y")]))
    assert isinstance(err, GraphError)
    assert err.message == (
        "the graph has a cycle through node 'first' (Relu), node 'second' (Relu), node 'out' (Add)"
    )


def test_tensor_defined_twice() -> None:
    from onnx import helper

    nodes = [
        helper.make_node("Relu", ["x"], ["y"], name="a"),
        helper.make_node("Tanh", ["x"], ["y"], name="b"),
    ]
    err = import_error(model_bytes(nodes, [vector("x", "N", 2)], [vector("y")]))
    assert err.message == "tensor 'y' is defined twice: by node 'a' (Relu) and node 'b' (Tanh)"


def test_absurd_input_dims() -> None:
    err = import_error(one_node("Relu", dims=("N", 100_000, 100_000)))
    assert isinstance(err, ResourceError)
    assert "graph input 'x' has more than 268,435,456 values per sample" in err.message
    err = import_error(one_node("Relu", dims=("N", -3)))
    assert isinstance(err, ResourceError)
    assert err.message == "graph input 'x' has an impossible dim. Received: [N, -3]"


def test_absurd_initializer_dims_are_refused_before_reading() -> None:
    from onnx import TensorProto

    huge = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1_000_000, 1_000_000])
    err = import_error(one_node("Gemm", inputs=("x", "w"), initializers=[huge]))
    assert isinstance(err, ResourceError)
    assert err.message == "initializer 'w' has absurd dims [1000000, 1000000]"


def test_initializer_with_too_few_values() -> None:
    from onnx import TensorProto

    short = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 3], float_data=[1, 2, 3])
    err = import_error(one_node("Gemm", inputs=("x", "w"), initializers=[short]))
    assert isinstance(err, GraphError)
    assert err.message == "initializer 'w' declares shape [2, 3] (6 values) but holds 3 values"


def test_external_data_is_refused() -> None:
    from onnx import TensorProto, helper

    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 4], vals=[0.0] * 8)
    w.data_location = TensorProto.EXTERNAL
    del w.float_data[:]
    entry = w.external_data.add()
    entry.key, entry.value = "location", "weights.bin"
    err = import_error(one_node("Gemm", inputs=("x", "w"), initializers=[w]))
    assert "initializer 'w' keeps its data in an external file" in err.message


def test_checker_complaints_are_reported() -> None:
    err = import_error(one_node("Relu", colour="blue"))
    assert "fails the ONNX checker: Unrecognized attribute: colour for operator Relu" in err.message


# -- unsupported ops and attributes --------------------------------------------------


def test_unsupported_op_names_node_and_op() -> None:
    err = import_error(one_node("Sin"))
    assert err.message.startswith("node 'n1' (Sin): ONNX op Sin is not supported. nnc imports: ")
    assert "Conv" in err.message and "LSTM" in err.message


def test_custom_domain() -> None:
    from onnx import helper

    node = helper.make_node("FusedThing", ["x"], ["y"], name="n1", domain="com.example")
    graph = helper.make_graph([node], "g", [vector("x", "N", 4)], [vector("y")])
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)],
        ir_version=8,
    )
    err = import_error(model.SerializeToString())
    assert err.message == "node 'n1' (FusedThing): ops of domain 'com.example' are not supported"


def _lstm(**attributes) -> bytes:  # type: ignore[no-untyped-def]
    from onnx import numpy_helper

    w = numpy_helper.from_array(
        np.zeros((2 if attributes.get("direction") else 1, 8, 3), np.float32), "W"
    )
    r = numpy_helper.from_array(np.zeros((w.dims[0], 8, 2), np.float32), "R")
    return one_node(
        "LSTM",
        inputs=("x", "W", "R"),
        dims=("t", "N", 3),
        initializers=[w, r],
        hidden_size=2,
        **attributes,
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            lambda: _lstm(direction="bidirectional"),
            "node 'n1' (LSTM): attribute direction='bidirectional' is not supported: nnc's "
            "recurrent layers run forward only",
        ),
        (
            lambda: _lstm(clip=3.0),
            "node 'n1' (LSTM): attribute clip=3.0 is not supported: nnc does not clip cell inputs",
        ),
        (
            lambda: one_node("Gelu", approximate="tanh", opset=20),
            "node 'n1' (Gelu): attribute approximate='tanh' is not supported: nnc's gelu is "
            "the exact erf form",
        ),
        (
            lambda: one_node("Softmax", axis=0),
            "node 'n1' (Softmax): attribute axis=0 is not supported: that is the batch axis",
        ),
        (
            lambda: one_node("MaxPool", dims=("N", 1, 3, 3, 3, 3), kernel_shape=[2, 2, 2, 2]),
            "node 'n1' (MaxPool): nnc pools over 1, 2 or 3 spatial dims of [N, C, ...]; "
            "kernel_shape is [2, 2, 2, 2] for an input of rank 6",
        ),
        (
            lambda: one_node(
                "AveragePool",
                dims=("N", 1, 4, 4),
                kernel_shape=[3, 3],
                pads=[1, 1, 1, 1],
                count_include_pad=1,
            ),
            "node 'n1' (AveragePool): attribute count_include_pad=1 is not supported: nnc's "
            "avgpool averages the real elements only",
        ),
        (
            lambda: one_node("Transpose", dims=("N", 2, 3), perm=[2, 0, 1]),
            "node 'n1' (Transpose): attribute perm=[2, 0, 1] is not supported: it moves the "
            "batch axis (axis 0) to axis 1; nnc's transpose permutes the axes of each sample "
            "and keeps the batch first",
        ),
        (
            lambda: one_node("Flatten", dims=("N", 2, 3), axis=2),
            "node 'n1' (Flatten): attribute axis=2 is not supported: nnc flattens each sample "
            "(batch first, axis 1)",
        ),
    ],
    ids=[
        "lstm_direction",
        "lstm_clip",
        "gelu_tanh",
        "softmax_batch_axis",
        "maxpool_4d",
        "avgpool_count_pad",
        "transpose_batch_axis",
        "flatten_axis",
    ],
)
def test_unsupported_attribute(data, message: str) -> None:  # type: ignore[no-untyped-def]
    err = import_error(data())
    assert err.message == message


def test_constant_added_to_a_tensor_that_has_no_bias_slot() -> None:
    """No layer to take it as a bias: a constant of the tensor's own per-sample shape is
    a learned tensor (param, as a position embedding is); one that broadcasts is a
    constant node (issue 19)."""
    from onnx import helper, numpy_helper

    from nnc.backends import onnx as backend

    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="act"),
        helper.make_node("Add", ["r", "c"], ["y"], name="shift"),
    ]
    own = numpy_helper.from_array(np.arange(4, dtype=np.float32), "c")
    imported = backend.import_model(model_bytes(nodes, [vector("x", "N", 4)], [vector("y")], [own]))
    model = imported.program.models[imported.model]
    assert [n.op for n in model.nodes] == ["relu", "param", "add"]
    assert imported.weights[f"{model.nodes[1].name}.value"].ravel().tolist() == [0, 1, 2, 3]
    broadcast = numpy_helper.from_array(np.full(1, 2.5, np.float32), "c")
    imported = backend.import_model(
        model_bytes(nodes, [vector("x", "N", 4)], [vector("y")], [broadcast])
    )
    model = imported.program.models[imported.model]
    assert [n.op for n in model.nodes] == ["relu", "add"]  # one element: the scalar
    assert model.nodes[1].scalar == 2.5


def test_broadcasting_add_of_tensors() -> None:
    from onnx import helper

    nodes = [
        helper.make_node("Flatten", ["a"], ["fa"], name="fa"),
        helper.make_node("Add", ["fa", "b"], ["y"], name="sum"),
    ]
    err = import_error(
        model_bytes(nodes, [vector("a", "N", 2, 3), vector("b", "N", 3)], [vector("y")])
    )
    assert err.message == (
        "node 'sum' (Add): as nnc's add: '+' cannot broadcast [6] with [3]: dim -1 is 6 against 3"
    )


def test_matmul_of_two_tensors() -> None:
    from onnx import helper

    node = helper.make_node("MatMul", ["x", "x2"], ["y"], name="mm")
    err = import_error(
        model_bytes([node], [vector("x", "N", 4), vector("x2", "N", 4)], [vector("y")])
    )
    assert err.message == (
        "node 'mm' (MatMul): multiplies [N, 4] by [N, 4], where ONNX's product reaches the "
        "batch axis; nnc imports MatMul as its per-sample matmul only for two batches of "
        "matrices of one rank ([N, ..., m, k] @ [N, ..., k, n]), a batch of matrices and a "
        "constant that leaves the batch axis alone, or [N, k] @ a constant [k, n]"
    )


def test_recurrent_state_and_gru_reset() -> None:
    from onnx import helper, numpy_helper

    def gru(**attributes):  # type: ignore[no-untyped-def]
        w = numpy_helper.from_array(np.zeros((1, 6, 3), np.float32), "W")
        r = numpy_helper.from_array(np.zeros((1, 6, 2), np.float32), "R")
        h0 = numpy_helper.from_array(np.ones((1, 1, 2), np.float32), "h0")
        inputs = (
            ["x", "W", "R", "", "", "h0"] if attributes.pop("state", False) else ["x", "W", "R"]
        )
        node = helper.make_node("GRU", inputs, ["", "y"], name="g", hidden_size=2, **attributes)
        return model_bytes([node], [vector("x", "t", "N", 3)], [vector("y")], [w, r, h0])

    err = import_error(gru())
    assert err.message == (
        "node 'g' (GRU): attribute linear_before_reset=0 is not supported: nnc's gru applies "
        "the reset after the recurrent matmul (linear_before_reset=1)"
    )
    err = import_error(gru(linear_before_reset=1, state=True))
    assert err.message == (
        "node 'g' (GRU): initial_h is not zero; nnc's recurrent layers start from zero state"
    )


def test_graph_output_with_the_batch_second() -> None:
    """A time-major LSTM sequence Y [t, 1, N, H] as a graph output: nnc outputs are
    batch-first, and nnc has no transpose to make it so."""
    from onnx import helper, numpy_helper

    w = numpy_helper.from_array(np.zeros((1, 8, 3), np.float32), "W")
    r = numpy_helper.from_array(np.zeros((1, 8, 2), np.float32), "R")
    node = helper.make_node("LSTM", ["x", "W", "R"], ["y"], name="l", hidden_size=2)
    err = import_error(model_bytes([node], [vector("x", "t", "N", 3)], [vector("y")], [w, r]))
    assert err.message == "graph output 'y' has the batch on axis 2; nnc outputs are batch-first"


def test_even_size_lrn_export_is_not_reimported() -> None:
    """Even-size LRN is exported written out (onnxruntime's LRN wants odd sizes); the
    importer names the first op it cannot read instead of guessing."""
    from nnc.backends import onnx as backend

    program = nnc.parse("model M {\n    input x: [4, 3, 3]\n    lrn(2)\n}\n")
    err = import_error(backend.emit(program))
    # Mul(x, x) reads as square; the window sum over channels is the first op refused.
    assert err.message.startswith(
        "node 'lrn_1/window_mean' (AveragePool): attribute count_include_pad=1 is not supported"
    )


# -- export and runtime --------------------------------------------------------------


def xor() -> nnc.Program:
    return nnc.load(EXAMPLES / "xor.nn")


def test_opset_out_of_range() -> None:
    import onnx

    from nnc.backends import onnx as backend

    newest = onnx.defs.onnx_opset_version()
    for opset in (10, newest + 1):
        with pytest.raises(BackendError) as info:
            backend.emit(xor(), opset=opset)
        assert info.value.message == (
            f"the onnx backend exports opsets 11 to {newest} (onnx {onnx.__version__}). "
            f"Received: {opset}"
        )


def test_runtime_is_inference_only() -> None:
    from nnc.backends import onnx as backend

    runtime = backend.build(xor(), threads=1)
    x = np.zeros((4, 2), np.float32)
    calls = {
        "train": lambda: runtime.train_step(x, x[:, :1], 0.1),
        "compute gradients": lambda: runtime.gradients(x, x[:, :1]),
        "hold optimizer state": runtime.get_optimizer_state,
        "run in training mode": lambda: runtime.forward(x, training=True),
    }
    for what, call in calls.items():
        with pytest.raises(BackendError) as info:
            call()
        assert info.value.message == (
            f"the onnx backend is inference-only: it cannot {what}. Train with the numpy, "
            "torch or tensorflow backend, save the weights, and export them "
            "(nnc export --weights)"
        )


def test_runtime_evaluates_the_recipes_loss_as_numpy_does() -> None:
    from nnc.backends import numpy as reference
    from nnc.backends import onnx as backend

    program = xor()
    weights = reference.build(program, seed=3).get_weights()
    x = np.random.default_rng(0).normal(size=(16, 2)).astype(np.float32)
    y = np.random.default_rng(1).uniform(size=(16, 1)).astype(np.float32)
    expected = reference.build(program, weights=weights).loss(x, y)
    got = backend.build(program, weights=weights, threads=1).loss(x, y)
    assert abs(got - expected) < 1e-6 * max(1.0, abs(expected))


def test_forward_checks_its_inputs() -> None:
    from nnc.backends import onnx as backend

    runtime = backend.build(xor(), threads=1)
    with pytest.raises(DataError) as info:
        runtime.forward(np.zeros((4, 2, 1), np.float32))
    assert info.value.message == (
        "input 'x' takes batches of [2] samples (rank 2 with the batch). Received: shape [4, 2, 1]"
    )
    with pytest.raises(DataError, match=r"model 'Xor' takes 1 input\(s\). Received: 2"):
        runtime.forward(np.zeros((4, 2)), np.zeros((4, 2)))
    with pytest.raises(
        DataError, match=r"onnxruntime could not run the model: .* Got: 3 Expected: 2"
    ):
        runtime.forward(np.zeros((4, 3), np.float32))


def test_weights_are_checked() -> None:
    from nnc.backends import onnx as backend

    program = xor()
    weights = nnc.ir.weights.init_weights(program, "Xor", seed=7)
    del weights["dense_2.bias"]
    with pytest.raises(WeightsError, match=r"weights is missing tensor\(s\) dense_2\.bias"):
        backend.emit(program, weights=weights)
    runtime = backend.build(program, threads=1)
    with pytest.raises(WeightsError, match=r"dense_2\.bias"):
        runtime.set_weights(weights)
    with pytest.raises(BackendError, match=r"takes the options opset and threads\. Received: gpu"):
        backend.build(program, gpu=True)


def test_corrupted_files_never_crash() -> None:
    """Random byte flips, cuts and insertions in exported models: every import either
    succeeds or raises an NncError (found by this: corrupt strings reaching the checker
    and names that protobuf returns as bytes)."""
    from nnc.backends import onnx as backend

    sources = [backend.emit(nnc.load(EXAMPLES / f"{n}.nn")) for n in ("lenet5", "sequence_lstm")]
    rng = np.random.default_rng(0)
    outcomes = {"imported": 0, "refused": 0}
    for _ in range(80):
        data = bytearray(sources[int(rng.integers(len(sources)))])
        for _ in range(int(rng.integers(1, 4))):
            at = int(rng.integers(len(data)))
            kind = int(rng.integers(3))
            if kind == 0:
                data[at] = int(rng.integers(256))
            elif kind == 1:
                del data[at : at + int(rng.integers(1, 50))]
            else:
                data[at:at] = bytes(rng.integers(0, 256, int(rng.integers(1, 8))).tolist())
        try:
            backend.import_model(bytes(data))
            outcomes["imported"] += 1
        except NncError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 40 and sum(outcomes.values()) == 80
