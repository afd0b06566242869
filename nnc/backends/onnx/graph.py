"""The ONNX export driver: IR model -> ModelProto, through the lowerings' tables
(they write to the :class:`~nnc.backends.onnx.builder.GraphBuilder`).

The graph is built directly from the checked IR with ``onnx.helper``; nothing is
traced. Every IR value becomes one ONNX tensor named after its node, so a reader of
the ``.onnx`` file (Netron, say) sees nnc's layer names. Auxiliary tensors of a
lowering are named ``<node>/<role>``.

The batch dimension is the symbolic ``N``; symbolic dims of the spec stay symbolic
(``dim_param``). Weights are canonical (``docs/semantics.md``); where ONNX wants
another layout (recurrent gate orders, a transposed dense weight for ``MatMul``) the
lowering converts them and names the converted initializer after the parameter.

This module imports ``onnx`` at the top: it is only imported by ``emit``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper

from nnc._version import __version__
from nnc.backends.onnx import (
    lower_activations,
    lower_arith,
    lower_attention,
    lower_energy,
    lower_layers,
    lower_layout,
    lower_linalg,
    lower_maths,
    lower_positions,
    lower_recurrent,
    lower_resample,
)
from nnc.backends.onnx.builder import GraphBuilder, Lowering
from nnc.backends.onnx.preprocessing import Preprocessing
from nnc.errors import BackendError, UnsupportedOpError
from nnc.ir.program import Model, Program
from nnc.ir.types import Dim, TensorType

DTYPES = {"float32": TensorProto.FLOAT, "int64": TensorProto.INT64}
BATCH = "N"


def lowerings() -> dict[str, Lowering]:
    """Every IR op's lowering, keyed by op name."""
    table: dict[str, Lowering] = {}
    modules = (lower_layers, lower_recurrent, lower_activations, lower_energy, lower_maths)
    for module in (
        *modules,
        lower_resample,
        lower_layout,
        lower_arith,
        lower_linalg,
        lower_attention,
        lower_positions,
    ):
        table.update(module.LOWERINGS)
    return table


def tensor_type(name: str, t: TensorType, batch: str) -> onnx.ValueInfoProto:
    shape: list[Dim] = [batch, *t.shape]
    return helper.make_tensor_value_info(name, DTYPES[t.dtype], shape)


def batch_symbol(model: Model) -> str:
    """``N``, unless the spec already uses ``N`` for one of its own dims."""
    symbols = {d for i in model.inputs for d in i.type.shape if isinstance(d, str)}
    name = BATCH
    while name in symbols:
        name = f"{name}_"
    return name


def _preprocess_input(b: GraphBuilder, model: Model, pre: Preprocessing) -> TensorType:
    """The preprocessing of a run on the model's input, in the order ``nnc predict``
    applies it: ``x * scale + shift`` (or ``binarize``'s threshold: ``Greater``,
    ``Cast``), the nearest-neighbour upscale (``Resize``, exact for an integer factor),
    a reshape to the model's input, ``(x - mean) / std``.
    Returns the type the graph's input is declared with (the raw samples' shape)."""
    if len(model.inputs) != 1 or model.inputs[0].type.dtype != "float32":
        raise BackendError(
            f"input preprocessing applies to one float32 input; model '{model.name}' has "
            f"{len(model.inputs)} input(s)"
        )
    name = model.inputs[0].name
    declared = model.inputs[0].type
    value = name
    t = pre.transform
    if t is not None and t.affine:
        value = b.op("Mul", [value, b.scalar(f"{name}/scale", t.scale)], f"{name}/scaled")
        value = b.op("Add", [value, b.scalar(f"{name}/shift", t.shift)], f"{name}/shifted")
    if t is not None and t.threshold is not None:
        above = b.op(
            "Greater", [value, b.scalar(f"{name}/threshold", t.threshold)], f"{name}/above"
        )
        value = b.op("Cast", [above], f"{name}/binarized", to=1)  # FLOAT
    if t is not None and t.upscale != 1 and t.image is not None:
        declared = declared.with_shape(t.image)
        f = float(t.upscale)
        scales = b.initializer(f"{name}/upscale", np.array([1.0, 1.0, f, f], np.float32))
        # opset 11 wants a region of interest, even an unused one: an empty tensor
        roi = "" if b.opset >= 13 else b.initializer(f"{name}/roi", np.zeros(0, np.float32))
        value = b.op(
            "Resize",
            [value, roi, scales],
            f"{name}/upscaled",
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        )
        target = model.inputs[0].type.shape
        if tuple(target) != (t.image[0], t.image[1] * t.upscale, t.image[2] * t.upscale):
            shape = np.array([-1, *target], np.int64)
            value = b.op("Reshape", [value, b.initializer(f"{name}/shape", shape)], f"{name}/fit")
    if pre.standardize is not None:
        mean, std = pre.standardize
        value = b.op(
            "Sub",
            [value, b.initializer(f"{name}/mean", mean.astype(np.float32))],
            f"{name}/centred",
        )
        std_name = b.initializer(f"{name}/std", std.astype(np.float32))
        value = b.op("Div", [value, std_name], f"{name}/standardized")
    b.values[name] = value
    return declared


def export_model(
    program: Program,
    original: Model,
    flat: Model,
    weights: Mapping[str, np.ndarray],
    opset: int,
    source: str,
    preprocessing: Preprocessing | None = None,
) -> onnx.ModelProto:
    """Lower a flat (call-free) model to a ModelProto; outputs keep the original names.

    ``preprocessing`` (the run's scale and upscale of a built-in set, and its input
    standardisation) makes the graph take raw samples, as ``nnc predict`` does.
    """
    table = lowerings()
    b = GraphBuilder(flat, weights, opset)
    declared = {i.name: i.type for i in flat.inputs}
    if preprocessing is not None and not preprocessing.empty:
        declared[flat.inputs[0].name] = _preprocess_input(b, flat, preprocessing)
    for node in flat.nodes:
        lower = table.get(node.op)
        if lower is None:
            raise UnsupportedOpError(node.op, "onnx", node.span)
        lower(b, node)
    batch = batch_symbol(flat)
    graph_inputs = {i.name for i in flat.inputs}
    outputs = []
    for name, ref in zip(original.outputs, flat.outputs, strict=True):
        tensor = b.value(ref)
        if tensor != name or tensor in graph_inputs:
            # Graph outputs are named after the model's outputs; an alias (dropout,
            # a call's result) or an input passed straight through needs a node.
            tensor = b.op("Identity", [tensor], name)
        outputs.append(tensor_type(tensor, flat.value_type(ref), batch))
    graph = helper.make_graph(
        b.nodes,
        original.name,
        [tensor_type(i.name, declared[i.name], batch) for i in flat.inputs],
        outputs,
        initializer=b.initializers,
        doc_string=f"model {original.name} from {source}",
    )
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(
        graph,
        opset_imports=opsets,
        ir_version=helper.find_min_ir_version_for(opsets),
        producer_name="nnc",
        producer_version=__version__,
        doc_string=f"Generated by nnc {__version__} from {source}, model {original.name}.",
    )
    props = {"nnc.source": source, "nnc.model": original.name}
    if preprocessing is not None and not preprocessing.empty:
        props["nnc.preprocessing"] = preprocessing.describe()
    helper.set_model_props(model, props)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:  # a bug in a lowering, never user input
        raise BackendError(
            f"the exported ONNX model of '{original.name}' is invalid: {exc}"
        ) from None
    return model
