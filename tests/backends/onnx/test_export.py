"""Export: every example and every registry op exports to a valid ONNX model whose
onnxruntime outputs equal a float64 NumPy reference on the same weights."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc.ir.ops import OPS
from tests.backends.onnx.helpers import (
    load_example,
    max_deviation,
    op_program,
    outputs_list,
    random_inputs,
    random_weights,
    reference_forward,
)
from tests.backends.spatial_cases import SPATIAL_CASES
from tests.conftest import EXAMPLES, require

# float32 against float64: a few ulps of the largest output, never less than 1e-5.
RTOL = 2e-5

EXPORTED_OPS = sorted(op for op in OPS if op != "call")  # calls are inlined (autoencoder)

# Geometry the registry examples do not reach: asymmetric `same` pads, 1-D windows,
# transposed convolutions with crops and output padding, sequences, axes.
EXTRA_SPECS = {
    "conv1d_same_stride2": "input x: [2, 9]\n conv1d(3, 4, stride = 2, padding = same)",
    "conv2d_explicit_pads": "input x: [2, 6, 5]\n conv2d(4, [3, 2], padding = [1, 0, 2, 1])",
    "conv2d_dilated_grouped": "input x: [4, 9, 9]\n conv2d(6, 3, dilation = 2, groups = 2)",
    "conv2d_no_bias": "input x: [2, 5, 5]\n conv2d(3, 3, bias = false)",
    "conv_transpose_crop": (
        "input x: [3, 4, 5]\n conv2d_transpose(2, 3, stride = 2, padding = [1, 0, 0, 1],"
        " output_padding = 1)"
    ),
    "conv_transpose_valid": "input x: [2, 3, 3]\n conv2d_transpose(4, [2, 3], stride = [1, 2])",
    "maxpool_same": "input x: [2, 7, 7]\n maxpool(3, stride = 2, padding = same)",
    "avgpool_same_1d": "input x: [2, 9]\n avgpool(4, stride = 2, padding = same)",
    "sumpool_same": "input x: [2, 5, 5]\n sumpool(2, padding = same)",
    "sumpool_1d_same": "input x: [3, 7]\n sumpool(3, stride = 2, padding = same)",
    "global_avg_pool_1d": "input x: [3, 8]\n global_avg_pool",
    "lrn_1d_even": "input x: [5, 6]\n lrn(4, alpha = 0.5, beta = 0.6, bias = 2.0)",
    "lrn_1d_odd": "input x: [5, 6]\n lrn(3, alpha = 0.5)",
    "lrn_even_image": "input x: [4, 3, 3]\n lrn(2, alpha = 0.3, beta = 0.5)",
    "batchnorm_vector": "input x: [4]\n batchnorm(eps = 0.001)",
    "batchnorm_1d": "input x: [3, 6]\n batchnorm",
    "layernorm_image": "input x: [2, 3, 4]\n layernorm(eps = 0.01)",
    "dense_sequence": "input x: [t, 3]\n dense(4)",
    "dense_sequence_no_bias": "input x: [t, 3]\n dense(4, bias = false)",
    "dense_no_bias": "input x: [3]\n dense(2, bias = false)",
    "prelu_image": "input x: [3, 4, 4]\n prelu",
    "prelu_vector": "input x: [5]\n prelu",
    "softmax_axis0": "input x: [4, 3]\n softmax(0)",
    "log_softmax_axis0": "input x: [4, 3]\n log_softmax(axis = -2)",
    "concat_last_axis": (
        "input x: [2, 3]\n y = x |> conv1d(2, 1)\n output concat(x, y, x, axis = -1)"
    ),
    "sum_of_three": "input x: [4]\n y = x |> dense(4)\n z = y |> relu\n output x + y + z",
    "lstm_sequences": "input x: [t, 3]\n lstm(4, return_sequences = true)",
    "gru_last": "input x: [t, 2]\n gru(3)",
    "rnn_last": "input x: [t, 2]\n rnn(3)",
    "flatten_vector": "input x: [4]\n flatten\n dense(2)",
    "reshape_image": "input x: [2, 6]\n reshape([3, 2, 2])\n conv2d(2, 2)",
    "dropout_output": "input x: [4]\n dense(3)\n dropout(0.5)",
    "input_is_output": "input x: [4]\n y = x |> dense(2)\n output y, x",
    "two_inputs": "input a: [3]\n input b: [3]\n output concat(a |> tanh, b)",
    "elu_alpha": "input x: [6]\n elu(0.5)",
    "leaky_relu_alpha": "input x: [6]\n leaky_relu(0.2)",
    **SPATIAL_CASES,
}


def check_and_compare(
    program: nnc.Program, model_name: str | None = None, opset: int = 17
) -> float:
    """Export with random weights at ``opset``, validate, run in onnxruntime and return
    the largest deviation from the reference relative to the output scale."""
    import onnx

    from nnc.backends import onnx as backend
    from nnc.backends.codegen import select

    model, _ = select(program, model_name)
    weights = random_weights(program, model)
    data = backend.emit(program, model.name, weights=weights, opset=opset)
    proto = onnx.load_from_string(data)
    assert proto.opset_import[0].version == opset
    onnx.checker.check_model(proto, full_check=True)
    onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True, data_prop=True)
    runtime = backend.build(program, model.name, weights=weights, threads=1, opset=opset)
    inputs = random_inputs(model)
    got = outputs_list(runtime.forward(*inputs))
    want = reference_forward(program, model, weights, inputs)
    scale = max(1.0, *(float(np.max(np.abs(w))) for w in want))
    deviation = max_deviation(got, want) / scale
    if importlib.util.find_spec("nnc.backends.numpy") is not None:
        # The NumPy backend in float64 is the project's reference; agree with it too.
        from nnc.backends import numpy as numpy_backend

        numpy_runtime = numpy_backend.build(program, model.name, weights, dtype="float64")
        expected = outputs_list(numpy_runtime.forward(*inputs))
        deviation = max(deviation, max_deviation(got, expected) / scale)
    return deviation


@pytest.fixture(autouse=True)
def _frameworks() -> None:
    require("onnx")
    require("onnxruntime")


# AlexNet's export is compared with the reference by tests/equivalence/test_examples.py
# (its onnx cell), and its layers by the registry sweeps below.
def test_every_example_matches_the_reference(small_example: Path) -> None:
    program, model = load_example(small_example)
    assert check_and_compare(program, model.name) < RTOL


@pytest.mark.parametrize("op", EXPORTED_OPS)
def test_every_registry_op_matches_the_reference(op: str) -> None:
    assert check_and_compare(op_program(op)) < RTOL


@pytest.mark.parametrize("name", sorted(EXTRA_SPECS))
def test_geometry_matches_the_reference(name: str) -> None:
    body = EXTRA_SPECS[name].replace("\n ", "\n    ")
    program = nnc.parse(f"model M {{\n    {body}\n}}\n")
    assert check_and_compare(program) < RTOL


# Deployment targets still ask for opsets 11 to 16: Squeeze and Unsqueeze took their
# axes as attributes before 13, Softmax normalised every axis from `axis` on before
# 13, LayerNormalization and Gelu came in 17 and 20, Resize wanted a region of
# interest in 11. Every example, op and geometry exports to the oldest, and every
# example to 13 (AlexNet aside: its grouped conv, LRN and pools are in the op sweep).
@pytest.mark.parametrize("opset", [11, 13])
def test_every_example_exports_to_older_opsets(small_example: Path, opset: int) -> None:
    program, model = load_example(small_example)
    assert check_and_compare(program, model.name, opset) < RTOL


@pytest.mark.parametrize("op", EXPORTED_OPS)
def test_every_registry_op_exports_to_opset_11(op: str) -> None:
    assert check_and_compare(op_program(op), opset=11) < RTOL


@pytest.mark.parametrize("name", sorted(EXTRA_SPECS))
def test_geometry_exports_to_opset_11(name: str) -> None:
    body = EXTRA_SPECS[name].replace("\n ", "\n    ")
    program = nnc.parse(f"model M {{\n    {body}\n}}\n")
    assert check_and_compare(program, opset=11) < RTOL


def _dims(value) -> list[object]:  # type: ignore[no-untyped-def]
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


@pytest.mark.parametrize(
    ("body", "inputs", "outputs"),
    [
        ("input window: [t, 1]\n    lstm(4)\n    dense(1)", [["N", "t", 1]], [["N", 1]]),
        (
            "input x: [3, h, w]\n    conv2d(4, 3, padding = same)",
            [["N", 3, "h", "w"]],
            [["N", 4, "h", "w"]],
        ),
        # A spec that names a dim N gets the batch N_.
        ("input x: [N, 2]\n    dense(3)", [["N_", "N", 2]], [["N_", "N", 3]]),
        ("input ids: int64[t]\n    embedding(5, 2)", [["N", "t"]], [["N", "t", 2]]),
    ],
)
def test_batch_and_symbolic_dims_stay_symbolic(
    body: str, inputs: list[list[object]], outputs: list[list[object]]
) -> None:
    import onnx

    from nnc.backends import onnx as backend

    proto = onnx.load_from_string(backend.emit(nnc.parse(f"model M {{\n    {body}\n}}\n")))
    assert [_dims(v) for v in proto.graph.input] == inputs
    assert [_dims(v) for v in proto.graph.output] == outputs
    elem = proto.graph.input[0].type.tensor_type.elem_type
    assert elem == (onnx.TensorProto.INT64 if "int64" in body else onnx.TensorProto.FLOAT)


def test_names_and_metadata() -> None:
    import onnx

    from nnc.backends import onnx as backend

    data = backend.emit(nnc.load(EXAMPLES / "autoencoder.nn"), source="examples/autoencoder.nn")
    assert data == backend.emit(
        nnc.load(EXAMPLES / "autoencoder.nn"), source="examples/autoencoder.nn"
    )
    proto = onnx.load_from_string(data)
    assert proto.producer_name == "nnc"
    assert proto.opset_import[0].version == 17
    assert proto.ir_version == 8
    assert proto.graph.name == "Autoencoder"
    assert {p.key: p.value for p in proto.metadata_props} == {
        "nnc.source": "examples/autoencoder.nn",
        "nnc.model": "Autoencoder",
    }
    # Calls are inlined with their prefix; the output keeps the model's output name.
    assert [n.name for n in proto.graph.node][:2] == ["encoder_1.dense_1", "encoder_1.relu_1"]
    assert [o.name for o in proto.graph.output] == ["decoder_1"]
    assert sorted(t.name for t in proto.graph.initializer)[:2] == [
        "decoder_1.dense_1.bias",
        "decoder_1.dense_1.weight",
    ]
