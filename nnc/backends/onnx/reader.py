"""Reading an ONNX file for import: parse, validate the structure, fold constants.

Everything a malformed file can get wrong is reported here as an
:class:`~nnc.errors.NncError` naming what is wrong: bad protobuf, a missing
initializer or input, a tensor defined twice, a cycle, absurd dims, external data.
The importer then works on a :class:`Graph`: the nodes it needs, in topological
order, with constants (initializers and ``Constant`` nodes) as NumPy arrays.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from nnc.errors import BackendError, GraphError, ResourceError
from nnc.userfiles import read_regular

MAX_DIM = 2**31 - 1
MAX_ELEMENTS = 2**28  # one tensor of 1 GiB in float32
DEFAULT_DOMAINS = ("", "ai.onnx")


class OnnxImportError(BackendError):
    """An ONNX model uses an op, an attribute or a form that nnc cannot import."""


def describe(node: onnx.NodeProto) -> str:
    """How errors name a node: ``node '/fc/Gemm' (Gemm)``."""
    return f"node '{node.name or node.output[0]}' ({node.op_type})"


@dataclass
class Graph:
    """A validated ONNX graph, ready for conversion."""

    model: onnx.ModelProto
    opset: int
    inputs: list[onnx.ValueInfoProto]
    outputs: list[str]
    consts: dict[str, np.ndarray]
    nodes: list[onnx.NodeProto]  # needed ones, topologically ordered
    consumers: dict[str, list[onnx.NodeProto]] = field(default_factory=dict)

    def uses(self, tensor: str) -> int:
        """How many times ``tensor`` is read: by needed nodes and as a graph output."""
        return len(self.consumers.get(tensor, ())) + self.outputs.count(tensor)

    def sole_consumer(self, tensor: str) -> onnx.NodeProto | None:
        """The one node reading ``tensor`` (which is no graph output), or None."""
        readers = self.consumers.get(tensor, [])
        if len(readers) == 1 and tensor not in self.outputs:
            return readers[0]
        return None


def read_model(data: bytes | str | Path) -> tuple[onnx.ModelProto, str]:
    """Parse a model from bytes or a file; returns it and a name for messages."""
    if isinstance(data, bytes):
        source, raw = "the ONNX model", data
    else:
        source = str(data)
        # Protobuf refuses messages of 2 GiB and more.
        raw = read_regular(data, 2**31 - 1)
    model = onnx.ModelProto()
    try:
        model.ParseFromString(raw)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise OnnxImportError(
            f"{source} is not an ONNX model: its protobuf cannot be parsed ({exc})"
        ) from None
    if not model.HasField("graph") or not model.graph.output:
        raise OnnxImportError(f"{source} is not an ONNX model: it has no graph with outputs")
    return model, source


@dataclass
class Structure:
    """What :func:`check_structure` established about a graph."""

    opset: int
    consts: dict[str, np.ndarray]
    inputs: list[onnx.ValueInfoProto]
    producers: dict[str, onnx.NodeProto | None]
    ordered: list[onnx.NodeProto]


def check_structure(model: onnx.ModelProto, source: str) -> Structure:
    """Refuse what no runtime should be handed: names that are not text, no default
    opset, initializers with external data, absurd dims or missing values, graph
    inputs with impossible dims, a tensor defined twice or read but never defined, a
    graph output nothing computes, a cycle. ``nnc import`` and ``nnc run`` both
    check this before anything else reads the model."""
    g = model.graph
    _check_names(g, source)
    opset = next((o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS), None)
    if opset is None:
        raise OnnxImportError(f"{source} imports no version of the default ONNX opset")
    consts = {t.name: tensor_array(t, f"initializer '{t.name}'") for t in g.initializer}
    inputs = [i for i in g.input if i.name not in consts]
    for value in inputs:
        check_value_dims(value)
    producers = _producers(g, consts, inputs)
    for node in g.node:
        for name in node.input:
            if name and name not in producers:
                raise GraphError(
                    f"{describe(node)} reads '{name}', which no node, graph input or "
                    "initializer defines"
                )
    for name in (o.name for o in g.output):
        if name not in producers:
            raise GraphError(f"graph output '{name}' is not computed by any node")
    return Structure(opset, consts, inputs, producers, toposort(list(g.node), producers))


def check_model(model: onnx.ModelProto, source: str) -> None:
    """The ONNX checker's verdict as an OnnxImportError naming the model's defect."""
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # ValidationError, or a decoding error on corrupt strings
        lines = str(exc).strip().splitlines()
        text = lines[0] if lines else type(exc).__name__
        raise OnnxImportError(f"{source} fails the ONNX checker: {text}") from None


def load_graph(model: onnx.ModelProto, source: str) -> Graph:
    """Validate the structure of ``model`` and collect what the importer needs."""
    structure = check_structure(model, source)
    opset, consts, inputs = structure.opset, structure.consts, structure.inputs
    producers, ordered = structure.producers, structure.ordered
    outputs = [o.name for o in model.graph.output]
    for node in ordered:
        if node.op_type == "Constant" and node.domain in DEFAULT_DOMAINS:
            consts[node.output[0]] = constant_value(node)
    # ConstantOfShape's shape is followed here: folding may make the fill a whole
    # constant (pads computed from a list, say); fold_graph prunes what stays unused.
    needed = needed_nodes(producers, outputs, all_inputs)
    nodes = [n for n in ordered if id(n) in needed and n.op_type != "Constant"]
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in nodes:
        for name in followed_inputs(node):
            consumers.setdefault(name, []).append(node)
    # Any checker complaint left (attribute types, ranges) names the model's defect.
    check_model(model, source)
    return Graph(model, opset, inputs, outputs, consts, nodes, consumers)


def _check_names(g: onnx.GraphProto, source: str) -> None:
    """Protobuf hands back invalid UTF-8 strings as bytes; names must be text."""
    names: list[object] = [g.name]
    for node in g.node:
        names += [node.name, node.op_type, node.domain, *node.input, *node.output]
    for value in (*g.input, *g.output):
        names.append(value.name)
        if value.type.HasField("tensor_type"):
            names += [d.dim_param for d in value.type.tensor_type.shape.dim]
    names += [t.name for t in g.initializer]
    if any(not isinstance(n, str) for n in names):
        raise OnnxImportError(f"{source} is corrupt: a name in its graph is not UTF-8 text")


def _producers(
    g: onnx.GraphProto, consts: dict[str, np.ndarray], inputs: list[onnx.ValueInfoProto]
) -> dict[str, onnx.NodeProto | None]:
    """Tensor name -> the node computing it (None for inputs and initializers)."""
    producers: dict[str, onnx.NodeProto | None] = dict.fromkeys(consts)
    for value in inputs:
        producers[value.name] = None
    for node in g.node:
        for name in node.output:
            if not name:
                continue
            if name in producers:
                first = producers[name]
                where = describe(first) if first is not None else "a graph input or initializer"
                raise GraphError(
                    f"tensor '{name}' is defined twice: by {where} and {describe(node)}"
                )
            producers[name] = node
    return producers


def toposort(
    nodes: list[onnx.NodeProto], producers: dict[str, onnx.NodeProto | None]
) -> list[onnx.NodeProto]:
    """Nodes in dependency order (stable); a cycle is a GraphError naming its nodes."""
    waiting: dict[int, int] = {}
    readers: dict[int, list[onnx.NodeProto]] = {}
    for node in nodes:
        deps = {id(p) for name in node.input if name and (p := producers[name]) is not None}
        waiting[id(node)] = len(deps)
        for dep in deps:
            readers.setdefault(dep, []).append(node)
    ready = deque(n for n in nodes if waiting[id(n)] == 0)
    ordered = []
    while ready:
        node = ready.popleft()
        ordered.append(node)
        for reader in readers.get(id(node), []):
            waiting[id(reader)] -= 1
            if waiting[id(reader)] == 0:
                ready.append(reader)
    if len(ordered) != len(nodes):
        stuck = [describe(n) for n in nodes if waiting[id(n)] > 0]
        raise GraphError(
            f"the graph has a cycle through {', '.join(stuck[:6])}"
            + (f" and {len(stuck) - 6} more" if len(stuck) > 6 else "")
        )
    return ordered


def followed_inputs(node: onnx.NodeProto) -> list[str]:
    """The inputs whose values a node needs. ConstantOfShape fills a shape with one
    value, and the importer only needs to know that value (a zero initial state of a
    recurrent layer, computed from the batch size, is the common case)."""
    if node.op_type == "ConstantOfShape":
        return []
    return [name for name in node.input if name]


def all_inputs(node: onnx.NodeProto) -> list[str]:
    return [name for name in node.input if name]


def needed_nodes(
    producers: Mapping[str, onnx.NodeProto | None],
    outputs: list[str],
    follow: Callable[[onnx.NodeProto], list[str]] = followed_inputs,
) -> set[int]:
    """The nodes the graph outputs depend on through ``follow``'s inputs (unused
    branches are not imported)."""
    needed: set[int] = set()
    stack = [producers.get(name) for name in outputs]
    while stack:
        node = stack.pop()
        if node is None or id(node) in needed:
            continue
        needed.add(id(node))
        stack.extend(producers.get(name) for name in follow(node))
    return needed


def check_value_dims(value: onnx.ValueInfoProto) -> None:
    """Refuse graph inputs with negative, zero or absurd dims."""
    if not value.type.HasField("tensor_type"):
        raise OnnxImportError(f"graph input '{value.name}' is not a tensor")
    dims = value.type.tensor_type.shape.dim
    static = [d.dim_value for d in dims if d.HasField("dim_value")]
    if any(v <= 0 or v > MAX_DIM for v in static):
        raise ResourceError(
            f"graph input '{value.name}' has an impossible dim. Received: {shape_text(value)}"
        )
    per_sample = [d.dim_value for d in dims[1:] if d.HasField("dim_value")]
    if math.prod(per_sample) > MAX_ELEMENTS:
        raise ResourceError(
            f"graph input '{value.name}' has more than {MAX_ELEMENTS:,} values per sample. "
            f"Received: {shape_text(value)}"
        )


def shape_text(value: onnx.ValueInfoProto) -> str:
    dims = value.type.tensor_type.shape.dim
    return (
        "["
        + ", ".join(
            d.dim_param or str(d.dim_value) if d.HasField("dim_value") or d.dim_param else "?"
            for d in dims
        )
        + "]"
    )


def tensor_array(t: TensorProto, what: str) -> np.ndarray:
    """A TensorProto as an array, after checking that its data fits its dims."""
    if t.data_location == TensorProto.EXTERNAL or t.external_data:
        raise OnnxImportError(
            f"{what} keeps its data in an external file; nnc imports self-contained models "
            "(save with onnx.save(model, path, save_as_external_data=False))"
        )
    dims = list(t.dims)
    if any(d < 0 or d > MAX_DIM for d in dims) or math.prod(dims) > MAX_ELEMENTS:
        raise ResourceError(f"{what} has absurd dims {dims}")
    if t.data_type not in NUMERIC_TYPES:
        name = (
            TensorProto.DataType.Name(t.data_type)
            if t.data_type in TensorProto.DataType.values()
            else t.data_type
        )
        raise OnnxImportError(f"{what} has data type {name}; nnc reads numeric tensors only")
    expected = math.prod(dims)
    itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
    stored = len(t.raw_data) // itemsize if t.raw_data else _typed_length(t)
    if stored != expected:
        raise GraphError(
            f"{what} declares shape {dims} ({expected} values) but holds {stored} values"
        )
    try:
        return numpy_helper.to_array(t)
    except Exception as exc:
        raise GraphError(f"{what} cannot be read: {exc}") from None


NUMERIC_TYPES = {
    TensorProto.FLOAT,
    TensorProto.DOUBLE,
    TensorProto.FLOAT16,
    TensorProto.INT64,
    TensorProto.INT32,
    TensorProto.INT8,
    TensorProto.UINT8,
    TensorProto.BOOL,
}


def _typed_length(t: TensorProto) -> int:
    if t.data_type in (TensorProto.FLOAT,):
        return len(t.float_data)
    if t.data_type == TensorProto.DOUBLE:
        return len(t.double_data)
    if t.data_type == TensorProto.INT64:
        return len(t.int64_data)
    return len(t.int32_data)  # int32, int8, uint8, bool and float16 are stored here


def constant_value(node: onnx.NodeProto) -> np.ndarray:
    """The value of a ``Constant`` node, whichever attribute holds it."""
    if len(node.attribute) != 1:
        raise OnnxImportError(f"{describe(node)} must have exactly one value attribute")
    attribute = node.attribute[0]
    value: Any = helper.get_attribute_value(attribute)
    what = f"the value of {describe(node)}"
    if attribute.name == "value":
        return tensor_array(value, what)
    if attribute.name == "value_float":
        return np.array(value, dtype=np.float32)
    if attribute.name == "value_floats":
        return np.array(list(value), dtype=np.float32)
    if attribute.name == "value_int":
        return np.array(value, dtype=np.int64)
    if attribute.name == "value_ints":
        return np.array(list(value), dtype=np.int64)
    raise OnnxImportError(
        f"{describe(node)}: attribute '{attribute.name}' is not supported "
        "(nnc reads value, value_float(s) and value_int(s))"
    )
