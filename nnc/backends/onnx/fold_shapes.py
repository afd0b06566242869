"""Constant folding before import: shape arithmetic and ops on constants.

PyTorch writes ``x.view(x.size(0), -1)`` as ``Shape -> Gather -> Unsqueeze ->
Concat -> Reshape``, and (without its own constant folding) ``w.t().unsqueeze(0)``
as ``Transpose``/``Unsqueeze`` of an initializer. This pass evaluates such nodes in
NumPy before any ONNX op is mapped to an nnc op:

- a node whose inputs are all constant, and whose op is in :data:`FOLDERS`, becomes
  a constant (an initializer) and is removed;
- ``Shape`` reads the static per-sample shape of its input (the graph input's
  declared shape, else ONNX shape inference); the batch size stays a symbol, so
  a shape value is an object array of ints and :class:`Symbol` entries;
- a ``Reshape`` whose target holds the batch size as its first entry gets a
  constant target (the batch entry becomes ``-1``, or ``0``, "copy the batch",
  where another entry is inferred) and is then imported as nnc's view, ``flatten``
  or ``reshape``.

A value that still holds a symbol and is read by anything else is refused with an
error naming the reading node.

>>> from onnx import helper
>>> s = Symbol("N", batch=True)
>>> fold_node(helper.make_node("Mul", ["a", "b"], ["c"]), [np.array([s, 3], object), np.array(2)])
[array([?, 6], dtype=object)]
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from nnc.backends.onnx.reader import (
    DEFAULT_DOMAINS,
    MAX_ELEMENTS,
    Graph,
    OnnxImportError,
    describe,
    followed_inputs,
    needed_nodes,
)
from nnc.errors import ResourceError


@dataclass(frozen=True)
class Symbol:
    """A dim not known at import time: the batch size, a symbolic dim of an input
    (``t``), or ``?`` for arithmetic on those."""

    name: str
    batch: bool = False

    def __repr__(self) -> str:
        return self.name


UNKNOWN = Symbol("?")


def symbolic(array: np.ndarray) -> bool:
    return array.dtype == object


def _attr(node: onnx.NodeProto, name: str, default: Any) -> Any:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _ints(array: np.ndarray | None) -> list[int] | None:
    if array is None:
        return None
    if symbolic(array):
        raise _NotFoldable
    return [int(v) for v in np.asarray(array).reshape(-1)]


class _NotFoldable(Exception):
    """The node's inputs are known but this pass does not evaluate it."""


def _given(value: Any) -> Any:
    """An input the evaluator needs; an absent one (an empty name) leaves the node
    to the importer, which reports it."""
    if value is None:
        raise _NotFoldable
    return value


# -- the evaluators: (node, inputs) -> output; inputs None when absent ---------------


def _axes(node: onnx.NodeProto, inputs: Sequence[np.ndarray | None]) -> list[int] | None:
    """``axes`` of Squeeze/Unsqueeze/Reduce*: an attribute before opset 13, an input since."""
    axes = _attr(node, "axes", None)
    if axes is not None:
        return [int(a) for a in axes]
    return _ints(inputs[1]) if len(inputs) > 1 else None


def _unsqueeze(node: onnx.NodeProto, inputs: Sequence[np.ndarray | None]) -> np.ndarray:
    x, axes = inputs[0], _axes(node, inputs)
    x = _given(x)
    if not axes:
        raise _NotFoldable
    rank = x.ndim + len(axes)
    for axis in sorted(a + rank if a < 0 else a for a in axes):
        x = np.expand_dims(x, axis)
    return x


def _squeeze(node: onnx.NodeProto, inputs: Sequence[np.ndarray | None]) -> np.ndarray:
    x, axes = inputs[0], _axes(node, inputs)
    x = _given(x)
    return np.squeeze(x) if axes is None else np.squeeze(x, axis=tuple(axes))


def _gather(node: onnx.NodeProto, inputs: Sequence[np.ndarray | None]) -> np.ndarray:
    x, indices = inputs[0], inputs[1]
    x, indices = _given(x), _given(indices)
    if symbolic(indices):
        raise _NotFoldable
    axis = int(_attr(node, "axis", 0))
    size = x.shape[axis]
    index = np.where(indices < 0, indices + size, indices).astype(np.int64)
    return np.take(x, index, axis=axis)


def _slice(node: onnx.NodeProto, inputs: Sequence[np.ndarray | None]) -> np.ndarray:
    x = inputs[0]
    x = _given(x)
    if len(inputs) > 1:  # opset 10 and later
        starts, ends = _ints(inputs[1]), _ints(inputs[2] if len(inputs) > 2 else None)
        axes = _ints(inputs[3] if len(inputs) > 3 else None)
        steps = _ints(inputs[4] if len(inputs) > 4 else None)
    else:
        starts, ends = _attr(node, "starts", None), _attr(node, "ends", None)
        axes, steps = _attr(node, "axes", None), None
    if starts is None or ends is None:
        raise _NotFoldable
    axes = list(range(len(starts))) if axes is None else list(axes)
    steps = [1] * len(starts) if steps is None else list(steps)
    index: list[slice] = [slice(None)] * x.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        index[axis] = slice(int(start), int(end), int(step))  # NumPy clamps as ONNX does
    return x[tuple(index)]


def _concat(node: onnx.NodeProto, inputs: Sequence[np.ndarray | None]) -> np.ndarray:
    parts = [p for p in inputs if p is not None]
    if any(symbolic(p) for p in parts):
        parts = [p.astype(object) for p in parts]
    return np.concatenate(parts, axis=int(_attr(node, "axis", 0)))


def _cast(node: onnx.NodeProto, inputs: Sequence[np.ndarray | None]) -> np.ndarray:
    x = inputs[0]
    x = _given(x)
    target = helper.tensor_dtype_to_np_dtype(int(_attr(node, "to", TensorProto.FLOAT)))
    if symbolic(x):
        if target.kind not in "iu":
            raise _NotFoldable
        return x  # a shape stays a shape in int32 or int64
    return x.astype(target)


def _reshape(node: onnx.NodeProto, inputs: Sequence[np.ndarray | None]) -> np.ndarray:
    x, shape = inputs[0], _ints(inputs[1])
    x, shape = _given(x), _given(shape)
    allowzero = int(_attr(node, "allowzero", 0))
    dims = [x.shape[k] if d == 0 and not allowzero else d for k, d in enumerate(shape)]
    return x.reshape(dims)


def _flatten(node: onnx.NodeProto, inputs: Sequence[np.ndarray | None]) -> np.ndarray:
    x = inputs[0]
    x = _given(x)
    axis = int(_attr(node, "axis", 1))
    axis = axis + x.ndim if axis < 0 else axis
    return x.reshape(math.prod(x.shape[:axis]), -1)


def _transpose(node: onnx.NodeProto, inputs: Sequence[np.ndarray | None]) -> np.ndarray:
    x = inputs[0]
    x = _given(x)
    perm = _attr(node, "perm", None)
    return np.transpose(x, None if perm is None else [int(p) for p in perm])


def _constant_of_shape(node: onnx.NodeProto, inputs: Sequence[np.ndarray | None]) -> np.ndarray:
    dims = _ints(inputs[0])
    dims = _given(dims)
    if any(d < 0 for d in dims) or math.prod(dims) > MAX_ELEMENTS:
        raise ResourceError(f"{describe(node)} makes an absurd shape {dims}")
    value = _attr(node, "value", None)
    fill = onnx.numpy_helper.to_array(value).reshape(-1) if value is not None else None
    if fill is None:
        return np.zeros(dims, dtype=np.float32)
    return np.full(dims, fill[0], dtype=fill.dtype)


def _elementwise(
    ints: Callable[[np.ndarray, np.ndarray], np.ndarray], neutral: int | None
) -> Callable[[onnx.NodeProto, Sequence[np.ndarray | None]], np.ndarray]:
    """A binary op: NumPy on numbers; on shapes, a symbol combined with ``neutral``
    (``N * 1``, ``N - 0``) stays itself and anything else is ``?``."""

    def entry(a: Any, b: Any, commutes: bool) -> Any:
        if isinstance(a, Symbol) or isinstance(b, Symbol):
            if isinstance(a, Symbol) and b == neutral:
                return a
            if commutes and isinstance(b, Symbol) and a == neutral:
                return b
            return UNKNOWN
        return ints(np.array(a, dtype=np.int64), np.array(b, dtype=np.int64)).item()

    def evaluate(node: onnx.NodeProto, inputs: Sequence[np.ndarray | None]) -> np.ndarray:
        a, b = inputs[0], inputs[1]
        a, b = _given(a), _given(b)
        if symbolic(a) or symbolic(b):
            commutes = node.op_type in ("Add", "Mul")
            combine = np.frompyfunc(lambda p, q: entry(p, q, commutes), 2, 1)
            return np.asarray(combine(a, b), dtype=object)
        return np.asarray(ints(a, b))

    return evaluate


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ONNX Div: true division of floats, integer division truncated toward zero."""
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        return (np.sign(a) * np.sign(b) * (np.abs(a) // np.abs(b))).astype(a.dtype)
    return np.asarray(np.divide(a, b))


def _unary(f: Callable[[np.ndarray], np.ndarray]) -> Callable[..., np.ndarray]:
    def evaluate(node: onnx.NodeProto, inputs: Sequence[np.ndarray | None]) -> np.ndarray:
        x = inputs[0]
        x = _given(x)
        if symbolic(x):
            raise _NotFoldable
        return np.asarray(f(x)).astype(x.dtype)

    return evaluate


def _identity(node: onnx.NodeProto, inputs: Sequence[np.ndarray | None]) -> np.ndarray:
    x = inputs[0]
    x = _given(x)
    return x


Folder = Callable[[onnx.NodeProto, Sequence[np.ndarray | None]], np.ndarray]

# Ops this pass evaluates once all their inputs are known. Each is cheap and exact
# in NumPy; ops on tensors of the graph are left to the importer.
FOLDERS: dict[str, Folder] = {
    "Identity": _identity,
    "Gather": _gather,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Concat": _concat,
    "Slice": _slice,
    "Cast": _cast,
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Transpose": _transpose,
    "ConstantOfShape": _constant_of_shape,
    "Add": _elementwise(np.add, 0),
    "Sub": _elementwise(np.subtract, 0),
    "Mul": _elementwise(np.multiply, 1),
    "Div": _elementwise(_divide, 1),
    "Mod": _elementwise(np.mod, None),  # fmod = 0: the sign of the divisor, as NumPy's
    "Neg": _unary(np.negative),
    "Sqrt": _unary(np.sqrt),
    "Reciprocal": _unary(np.reciprocal),
}


def fold_node(node: onnx.NodeProto, inputs: Sequence[np.ndarray | None]) -> list[np.ndarray] | None:
    """The outputs of ``node`` from known inputs, or None where this pass does not
    evaluate it. A shape value without symbols comes back as int64."""
    folder = FOLDERS.get(node.op_type)
    if folder is None or node.domain not in DEFAULT_DOMAINS or len(node.output) != 1:
        return None
    try:
        with np.errstate(all="ignore"):  # x / 0 of constants is the graph's own business
            result = np.asarray(folder(node, inputs))  # NumPy gives scalars for 0-d results
    except _NotFoldable:
        return None
    except (ValueError, IndexError, TypeError, KeyError, OverflowError) as exc:
        raise OnnxImportError(
            f"{describe(node)}: cannot be computed on its constants: {exc}"
        ) from None
    if symbolic(result) and not any(isinstance(v, Symbol) for v in result.reshape(-1)):
        result = result.astype(np.int64)
    if result.size > MAX_ELEMENTS:
        raise ResourceError(f"{describe(node)} computes more than {MAX_ELEMENTS:,} values")
    return [result]


# -- the pass ------------------------------------------------------------------------


class _Shapes:
    """Static shapes of the graph's tensors with the batch as a symbol: graph inputs
    as declared, everything else from ONNX shape inference (run only when a
    ``Shape`` node needs it).

    Inference runs on the graph as folded so far: the folded constants are its
    initializers (large ones only typed, never copied) and the Reshapes read their
    constant targets. Where a shape it gave holds a size other than an input's
    declared dims (ONNX's data propagation loses the batch after a Reshape of a
    computed shape, and sizes after a Split of computed sizes), it runs again once
    more has been folded: channel shuffle's reshape / transpose / reshape, repeated,
    keeps its static sizes."""

    def __init__(self, graph: Graph, batch_axes: dict[str, int]):
        self.graph = graph
        self.inferred: dict[str, onnx.ValueInfoProto] | None = None
        self.stale = False  # something was folded since the last inference
        self.nodes: Callable[[], list[onnx.NodeProto]] = lambda: graph.nodes
        self.batch: set[str] = set()
        self.declared: set[str] = set()  # the dim names of the graph inputs
        self.named: dict[str, onnx.ValueInfoProto] = {}
        for value in graph.inputs:
            named = onnx.ValueInfoProto()
            named.CopyFrom(value)
            for k, dim in enumerate(named.type.tensor_type.shape.dim):
                if not dim.HasField("dim_value") and not dim.dim_param:
                    dim.dim_param = f"{value.name}_dim{k}"
                if k == batch_axes.get(value.name, 0) and dim.dim_param:
                    self.batch.add(dim.dim_param)
                if dim.dim_param:
                    self.declared.add(dim.dim_param)
            self.named[value.name] = named

    def of(self, name: str) -> np.ndarray | None:
        """The shape of tensor ``name`` as a shape value, or None where unknown."""
        value = self.named.get(name)
        if value is None:
            value = self._infer().get(name)
            if self.stale and not self._complete(value):
                self.inferred = None
                value = self._infer().get(name)
        if value is None or not value.type.tensor_type.HasField("shape"):
            return None
        dims: list[int | Symbol] = []
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_value"):
                dims.append(int(dim.dim_value))
            elif dim.dim_param:
                dims.append(Symbol(dim.dim_param, dim.dim_param in self.batch))
            else:
                dims.append(UNKNOWN)
        return np.array(dims, dtype=object).reshape(len(dims))

    def _complete(self, value: onnx.ValueInfoProto | None) -> bool:
        """Whether every dim of ``value`` is a number or an input's declared dim."""
        if value is None or not value.type.tensor_type.HasField("shape"):
            return False
        return all(
            d.HasField("dim_value") or d.dim_param in self.declared
            for d in value.type.tensor_type.shape.dim
        )

    def _infer(self) -> dict[str, onnx.ValueInfoProto]:
        if self.inferred is None:
            model = self._model()
            # onnx raises its own types; without inferred shapes, inner Shapes stay.
            with contextlib.suppress(Exception):
                model = onnx.shape_inference.infer_shapes(model, data_prop=True)
            g = model.graph
            self.inferred = {v.name: v for v in (*g.value_info, *g.output)}
            self.stale = False
        return self.inferred

    def _model(self) -> onnx.ModelProto:
        """The graph as folded so far, for inference: small constants as initializers
        (shape arithmetic reads their values), the others as typed inputs."""
        source = self.graph.model
        model = onnx.ModelProto()
        model.ir_version = source.ir_version
        model.opset_import.extend(source.opset_import)
        model.functions.extend(source.functions)
        g = model.graph
        g.node.extend(self.nodes())
        g.input.extend(self.named.get(v.name, v) for v in self.graph.inputs)
        g.output.extend(source.graph.output)
        for name, array in self.graph.consts.items():
            if array.size <= _INFERENCE_CONSTANT:
                g.initializer.append(onnx.numpy_helper.from_array(array, name))
            else:
                dtype = helper.np_dtype_to_tensor_dtype(array.dtype)
                g.input.append(helper.make_tensor_value_info(name, dtype, array.shape))
        return model


# Constants of up to this many values are handed to shape inference with their values.
_INFERENCE_CONSTANT = 1024


@dataclass
class Folded:
    """What :func:`fold_graph` did."""

    nodes: int = 0  # nodes computed here and removed
    reshapes: int = 0  # Reshapes given a constant target in place of a computed one


def fold_graph(graph: Graph, batch_axes: dict[str, int]) -> Folded:
    """Fold ``graph`` in place: constants join ``graph.consts``, folded nodes leave
    ``graph.nodes``, and Reshapes of a computed shape get constant targets.
    ``batch_axes`` gives the batch axis of each graph input that has it elsewhere
    than 0 (time-major inputs)."""
    shapes = _Shapes(graph, batch_axes)
    values: dict[str, np.ndarray] = {}  # shape values that hold symbols
    kept: list[onnx.NodeProto] = []
    done = Folded()
    # The graph as folded so far, for shape inference: a node folded into a shape
    # value that holds a symbol stays, one folded into a constant goes.
    current: list[onnx.NodeProto | None] = list(graph.nodes)

    def known(name: str) -> np.ndarray | None:
        return graph.consts.get(name, values.get(name))

    shapes.nodes = lambda: [n for n in current if n is not None]
    for k, node in enumerate(graph.nodes):
        if node.domain not in DEFAULT_DOMAINS:
            kept.append(node)
        elif node.op_type == "Reshape" and len(node.input) == 2 and node.input[1] in values:
            kept.append(_static_reshape(node, values[node.input[1]], shapes, graph))
            current[k] = kept[-1]
            shapes.stale = True
            done.reshapes += 1
        elif (output := _evaluate(node, known, shapes)) is not None:
            _store(graph, values, node.output[0], output)
            if node.output[0] in graph.consts:
                current[k] = None
                shapes.stale = True
            done.nodes += 1
        else:
            kept.append(node)
    # What only a ConstantOfShape's shape needed and did not fold goes (the importer
    # reads just the fill value there).
    producers = {o: n for n in kept for o in n.output if o}
    needed = needed_nodes(producers, graph.outputs)
    graph.nodes = [n for n in kept if id(n) in needed]
    graph.consumers = {}
    for node in kept:
        for name in followed_inputs(node):
            graph.consumers.setdefault(name, []).append(node)
    _refuse_symbolic_reads(graph, values)
    return done


def _evaluate(
    node: onnx.NodeProto, known: Callable[[str], np.ndarray | None], shapes: _Shapes
) -> np.ndarray | None:
    """The output of ``node`` where its inputs are known and this pass folds it."""
    if node.op_type == "Shape":
        if len(node.input) != 1 or len(node.output) != 1:
            return None
        const = known(node.input[0])
        shape = (
            np.array(const.shape, dtype=np.int64) if const is not None else shapes.of(node.input[0])
        )
        if shape is None:
            return None
        start, end = int(_attr(node, "start", 0)), _attr(node, "end", None)
        return shape[start:end]  # NumPy clamps and counts from the end as ONNX does
    inputs = [known(n) if n else None for n in node.input]
    if any(x is None for x, n in zip(inputs, node.input, strict=True) if n):
        return None
    outputs = fold_node(node, inputs)
    return None if outputs is None else outputs[0]


def _store(graph: Graph, values: dict[str, np.ndarray], name: str, array: np.ndarray) -> None:
    if symbolic(array) and any(isinstance(v, Symbol) for v in array.reshape(-1)):
        values[name] = array
    else:
        graph.consts[name] = array.astype(np.int64) if symbolic(array) else array


def shape_text(array: np.ndarray) -> str:
    return "[" + ", ".join(str(v) for v in np.asarray(array).reshape(-1)) + "]"


def _static_reshape(
    node: onnx.NodeProto, target: np.ndarray, shapes: _Shapes, graph: Graph
) -> onnx.NodeProto:
    """A copy of the Reshape ``node`` reading a constant target in place of the
    computed one: the batch entry (which must come first) becomes ``0``, "copy the
    batch", where the input's batch is known to be its first axis (so that shape
    inference keeps the batch after it), else ``-1``; it must be ``0`` where another
    entry (a ``-1`` or one unknown) is to be inferred."""
    entries = list(np.asarray(target).reshape(-1))

    def refuse(why: str) -> OnnxImportError:
        return OnnxImportError(
            f"{describe(node)}: its target shape ('{node.input[1]}') is computed from "
            f"tensor shapes as {shape_text(target)}, which nnc cannot fold into a static "
            f"per-sample shape: {why}"
        )

    if int(_attr(node, "allowzero", 0)):
        raise refuse("allowzero = 1 makes 0 a size, not a copy")
    batch = [k for k, e in enumerate(entries) if isinstance(e, Symbol) and e.batch]
    if batch != [0]:
        raise refuse(
            "the batch size must be its first entry, once"
            if batch
            else "it does not keep the batch size first"
        )
    rest = entries[1:]
    unknown = [k for k, e in enumerate(rest) if isinstance(e, Symbol)]
    inferred = unknown + [k for k, e in enumerate(rest) if e == -1]
    if len(inferred) > 1:
        names = ", ".join(str(rest[k]) for k in inferred)
        raise refuse(f"more than one size is unknown at import time ({names})")
    data = shapes.of(node.input[0])
    batch_first = bool(
        data is not None and data.size and isinstance(data[0], Symbol) and data[0].batch
    )
    if inferred and not batch_first:
        raise refuse(f"the batch of '{node.input[0]}' is not known to be its first axis")
    first = 0 if batch_first else -1
    dims = [first, *(-1 if isinstance(e, Symbol) else int(e) for e in rest)]
    name = _fresh(f"{node.input[1]}/static", graph)
    graph.consts[name] = np.array(dims, dtype=np.int64)
    static = onnx.NodeProto()
    static.CopyFrom(node)
    static.input[1] = name
    return static


def _fresh(name: str, graph: Graph) -> str:
    taken = {o for n in graph.model.graph.node for o in n.output} | set(graph.consts)
    candidate, k = name, 1
    while candidate in taken:
        k += 1
        candidate = f"{name}_{k}"
    return candidate


def _refuse_symbolic_reads(graph: Graph, values: dict[str, np.ndarray]) -> None:
    """A shape that still holds the batch or a symbolic dim may only have become a
    Reshape target; any other reader, and a Shape nnc could not read, is an error."""
    for node in graph.nodes:
        if node.op_type == "Shape" and node.domain in DEFAULT_DOMAINS:
            raise OnnxImportError(
                f"{describe(node)}: the shape of '{node.input[0]}' is not known at import "
                "time (ONNX shape inference gives it no rank), so nnc cannot fold it"
            )
        for name in followed_inputs(node):
            if name in values:
                raise OnnxImportError(
                    f"{describe(node)}: its input '{name}' is computed from tensor shapes as "
                    f"{shape_text(values[name])}, which holds a size unknown at import time; "
                    "nnc folds shape arithmetic into constants and into Reshape targets that "
                    "keep the batch first"
                )
