"""ONNX -> nnc: a graph becomes a checked Program with one model, plus canonical
weights.

Values are tracked as :class:`Tensor` views. An IR value is always batch-first with
its own per-sample shape; the ONNX tensor standing for it may put the batch on
another axis (time-major recurrent layers) or hold the same values in another shape
(``[C, 1, 1]`` after ``GlobalAveragePool``, ``[t, 1, H]`` from ``LSTM``). Reshapes,
squeezes and transposes that only move unit axes or the batch axis are therefore
free: they change the view, not the IR. An op that reads a value in a particular
shape asks for it with :meth:`Importer.shaped`, which inserts ``flatten`` or
``reshape`` only when the shapes differ.

IR nodes are created under temporary ids and renamed at the end: after the ONNX
node's name where that is a valid nnc identifier, else nnc's own ``<op>_<k>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper
from pydantic import ValidationError

from nnc.backends.onnx.reader import (
    DEFAULT_DOMAINS,
    Graph,
    OnnxImportError,
    describe,
    shape_text,
)
from nnc.errors import NncError
from nnc.ir.base import Op
from nnc.ir.ops import OPS
from nnc.ir.passes import check, check_identifier
from nnc.ir.program import Input, Model, Program
from nnc.ir.types import Dim, TensorType, format_shape, numel
from nnc.ir.weights import Weights, check_weights

RECURRENT = ("RNN", "LSTM", "GRU")


@dataclass(frozen=True)
class Tensor:
    """An ONNX tensor as a view of the IR value ``ref``.

    ``shape`` is the ONNX shape without the batch axis, which sits at ``batch_axis``.
    Moving the batch axis first and reading the rest row-major gives exactly the
    IR value's per-sample values, read row-major.
    """

    ref: str
    shape: tuple[Dim, ...]
    batch_axis: int = 0

    @property
    def rank(self) -> int:
        """The rank of the ONNX tensor, batch included."""
        return len(self.shape) + 1

    def full_shape(self) -> list[Dim | None]:
        dims: list[Dim | None] = list(self.shape)
        dims.insert(self.batch_axis, None)  # None marks the batch
        return dims


@dataclass(frozen=True)
class Const:
    array: np.ndarray


@dataclass(frozen=True)
class Fill:
    """``ConstantOfShape`` of a computed shape: only the fill value is known."""

    value: float


Value = Tensor | Const | Fill


@dataclass
class Imported:
    """The result of an import: a checked program, its model, canonical weights and
    notes on conversions a user should know about (renamed inputs, say)."""

    program: Program
    model: str
    weights: Weights
    notes: list[str] = field(default_factory=list)
    # Where each ONNX graph input holds the batch (1: time-major), by nnc input name.
    batch_axes: dict[str, int] = field(default_factory=dict)
    # (mean, std), shaped [1, *sample], when the graph standardises its input first
    # (as `nnc export` does for runs with `standardize true`).
    standardize: tuple[np.ndarray, np.ndarray] | None = None
    # Where each ONNX graph output holds the batch (1: time-major), by graph output
    # position; absent means 0.
    output_batch_axes: dict[int, int] = field(default_factory=dict)


@dataclass
class _Pending:
    """An IR node under construction: its op, its preferred name, its weights."""

    node: Op
    preferred: str | None


Converter = Callable[["Importer", onnx.NodeProto], None]


class Importer:
    """Converts one validated :class:`Graph`; op converters call back into it."""

    def __init__(self, graph: Graph, source: str):
        self.graph = graph
        self.source = source
        self.env: dict[str, Value] = {k: Const(v) for k, v in graph.consts.items()}
        self.types: dict[str, TensorType] = {}
        self.pending: dict[str, _Pending] = {}
        self.weights: dict[str, dict[str, np.ndarray]] = {}
        self.inputs: list[Input] = []
        self.batch_axes: dict[str, int] = {}
        self.standardize: tuple[np.ndarray, np.ndarray] | None = None
        self.notes: list[str] = []
        self.done: set[int] = set()  # ids of ONNX nodes already converted (fused)
        self.converters: dict[str, Converter] = {}  # run's table, for patterns to call
        # IR layers made without a bias -> the ONNX tensor they compute: a following
        # Add of a constant to exactly that tensor becomes their bias.
        self.biasable: dict[str, str] = {}
        # (IR value, shape) -> the flatten/reshape made for it, shared by all readers.
        self.reshaped: dict[tuple[str, tuple[Dim, ...]], str] = {}
        self._counter = 0

    # -- values ---------------------------------------------------------------------

    def value(self, node: onnx.NodeProto, k: int) -> Value | None:
        """Input ``k`` of ``node``, or None when it is absent or empty."""
        if k >= len(node.input) or not node.input[k]:
            return None
        return self.env[node.input[k]]

    def tensor(self, node: onnx.NodeProto, k: int = 0) -> Tensor:
        """Input ``k`` as a computed tensor (not a constant)."""
        v = self.value(node, k)
        if not isinstance(v, Tensor):
            what = "is missing" if v is None else "is a constant"
            raise self.error(
                node,
                f"input {k} ('{_input_name(node, k)}') {what}; nnc needs a computed tensor there",
            )
        return v

    def const(self, node: onnx.NodeProto, k: int, what: str) -> np.ndarray | None:
        """Input ``k`` as a constant array (None when absent)."""
        v = self.value(node, k)
        if v is None:
            return None
        if isinstance(v, Fill):
            raise self.error(
                node,
                f"the {what} ('{node.input[k]}') is computed at run time; nnc needs a constant",
            )
        if not isinstance(v, Const):
            raise self.error(
                node,
                f"the {what} ('{node.input[k]}') is computed by the graph; nnc imports it "
                "only as a constant (an initializer or a Constant node)",
            )
        return v.array

    def set(self, node: onnx.NodeProto, value: Value, k: int = 0) -> None:
        self.env[node.output[k]] = value

    def needed(self, node: onnx.NodeProto, k: int) -> bool:
        """Whether output ``k`` of ``node`` is read by anything imported."""
        return k < len(node.output) and bool(node.output[k]) and self.graph.uses(node.output[k]) > 0

    def error(self, node: onnx.NodeProto, message: str) -> OnnxImportError:
        return OnnxImportError(f"{describe(node)}: {message}")

    # -- building IR ----------------------------------------------------------------

    def add(
        self,
        onnx_node: onnx.NodeProto | None,
        op: str,
        inputs: Sequence[str],
        params: dict[str, np.ndarray] | None = None,
        **attributes: Any,
    ) -> str:
        """Create an IR node of kind ``op``; returns its (temporary) reference."""
        self._counter += 1
        ref = f"%{self._counter}"
        try:
            node = OPS[op](name=ref, inputs=tuple(inputs), **attributes)
        except ValidationError as exc:
            problem = "; ".join(e["msg"] for e in exc.errors())
            raise self._fail(onnx_node, f"cannot be written as nnc's {op}: {problem}") from None
        ins = [self.types[r] for r in inputs]
        try:
            out = node.infer(ins)
            specs = node.param_specs(ins)
        except NncError as exc:
            raise self._fail(onnx_node, f"as nnc's {op}: {exc.message}") from None
        node = node.model_copy(update={"outs": (out,)})
        weights = params or {}
        for spec in specs:
            array = weights.get(spec.name)
            if array is None or tuple(array.shape) != spec.shape:
                got = "nothing" if array is None else list(array.shape)
                raise self._fail(
                    onnx_node,
                    f"{op} parameter '{spec.name}' should be {list(spec.shape)}, got {got}",
                )
        self.types[ref] = out
        preferred = onnx_node.name if onnx_node is not None else None
        self.pending[ref] = _Pending(node, preferred)
        self.weights[ref] = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        return ref

    def replace(self, ref: str, params: dict[str, np.ndarray], **attributes: Any) -> None:
        """Change attributes and parameters of an IR node made earlier (bias folding)."""
        old = self.pending[ref].node
        node = old.model_copy(update=attributes)
        ins = [self.types[r] for r in node.inputs]
        specs = {s.name: s.shape for s in node.param_specs(ins)}
        merged = {**self.weights[ref], **params}
        for name, shape in specs.items():
            if tuple(merged[name].shape) != shape:
                raise OnnxImportError(
                    f"bias of shape {list(merged[name].shape)} does not fit {shape}"
                )
        self.pending[ref] = _Pending(node, self.pending[ref].preferred)
        self.weights[ref] = {k: np.asarray(v, dtype=np.float32) for k, v in merged.items()}

    def node_of(self, ref: str) -> Op | None:
        pending = self.pending.get(ref)
        return pending.node if pending else None

    def _fail(self, node: onnx.NodeProto | None, message: str) -> OnnxImportError:
        return self.error(node, message) if node is not None else OnnxImportError(message)

    def shaped(self, t: Tensor, node: onnx.NodeProto, *, batch_first: bool = True) -> str:
        """A reference to an IR value of exactly ``t.shape``: ``t.ref`` itself, or a
        ``flatten``/``reshape`` of it."""
        if batch_first and t.batch_axis != 0:
            raise self.error(
                node,
                f"its input has the batch on axis {t.batch_axis}; nnc needs it first "
                "(insert a Transpose that moves the batch axis first)",
            )
        have = self.types[t.ref].shape
        if have == t.shape:
            return t.ref
        key = (t.ref, t.shape)
        if key not in self.reshaped:
            if len(t.shape) == 1 and t.shape[0] == numel(have):
                self.reshaped[key] = self.add(None, "flatten", [t.ref])
            elif all(isinstance(d, int) for d in t.shape):
                shape = tuple(int(d) for d in t.shape)
                self.reshaped[key] = self.add(None, "reshape", [t.ref], shape=shape)
            else:
                raise self.error(
                    node,
                    f"reads a {format_shape(have)} value as {format_shape(t.shape)}, a reshape "
                    "with symbolic dims that nnc cannot express",
                )
        return self.reshaped[key]

    def standard(self, node: onnx.NodeProto, k: int = 0) -> tuple[str, TensorType]:
        """Input ``k`` as a batch-first IR value in its ONNX shape, with its type."""
        ref = self.shaped(self.tensor(node, k), node)
        return ref, self.types[ref]

    # -- the whole graph --------------------------------------------------------------

    def run(self, converters: dict[str, Converter], patterns: dict[str, list[Converter]]) -> None:
        self.converters = converters
        self._declare_inputs()
        for node in self.graph.nodes:
            if id(node) in self.done:
                continue
            if node.domain not in DEFAULT_DOMAINS:
                raise self.error(node, f"ops of domain '{node.domain}' are not supported")
            for pattern in patterns.get(node.op_type, []):
                pattern(self, node)
                if id(node) in self.done:
                    break
            else:
                convert = converters.get(node.op_type)
                if convert is None:
                    supported = ", ".join(sorted(converters))
                    raise self.error(
                        node, f"ONNX op {node.op_type} is not supported. nnc imports: {supported}"
                    )
                convert(self, node)
            self.done.add(id(node))

    def _declare_inputs(self) -> None:
        taken: set[str] = set()
        doubles: list[str] = []
        for value in self.graph.inputs:
            name = _identifier(value.name, "input", taken)
            if name != value.name:
                self.notes.append(f"graph input '{value.name}' is the model input '{name}'")
            tensor_type = value.type.tensor_type
            if tensor_type.elem_type not in (
                TensorProto.FLOAT,
                TensorProto.DOUBLE,
                TensorProto.INT64,
            ):
                kind = TensorProto.DataType.Name(tensor_type.elem_type)
                raise OnnxImportError(
                    f"graph input '{value.name}' is {kind}; nnc inputs are float32, float64 "
                    "(computed in float32) or int64"
                )
            if tensor_type.elem_type == TensorProto.DOUBLE:
                doubles.append(value.name)
            dims = list(tensor_type.shape.dim)
            if not tensor_type.HasField("shape") or not dims:
                raise OnnxImportError(
                    f"graph input '{value.name}' needs a shape with a batch axis. "
                    f"Received: {shape_text(value)}"
                )
            batch_axis = 1 if time_major_input(self.graph, value.name) else 0
            if batch_axis == 1:
                self.notes.append(
                    f"graph input '{value.name}' is time-major [t, N, F]; the nnc model takes "
                    "it batch-first [N, t, F]"
                )
            if len(dims) <= batch_axis:
                raise OnnxImportError(f"graph input '{value.name}' has no batch axis")
            shape: list[Dim] = []
            for k, d in enumerate(dims):
                if k == batch_axis:
                    continue
                if d.HasField("dim_value"):
                    shape.append(int(d.dim_value))
                else:
                    shape.append(_identifier(d.dim_param or f"{name}_dim{k}", "dim", set()))
            dtype = "int64" if tensor_type.elem_type == TensorProto.INT64 else "float32"
            t = TensorType(dtype=dtype, shape=tuple(shape))
            self.inputs.append(Input(name=name, type=t))
            self.types[name] = t
            self.env[value.name] = Tensor(name, tuple(shape), batch_axis)
            self.batch_axes[name] = batch_axis
        if doubles:
            self.notes.append(double_note(doubles, self.graph))

    def finish(self, model_name: str) -> Imported:
        """Name the IR nodes, collect outputs and weights, and check the program."""
        outputs = []
        output_axes: dict[int, int] = {}
        for k, name in enumerate(self.graph.outputs):
            value = self.env[name]
            if not isinstance(value, Tensor):
                raise OnnxImportError(
                    f"graph output '{name}' is a constant; nnc outputs are computed"
                )
            if value.batch_axis == 1 and value.rank == 3 and self._time_major_attention():
                # torch's batch_first=False encoder: time-major in, time-major out
                output_axes[k] = 1
                self.notes.append(
                    f"graph output '{name}' is time-major [t, N, F]; the nnc model gives it "
                    "batch-first [N, t, F]"
                )
            elif value.batch_axis != 0:
                raise OnnxImportError(
                    f"graph output '{name}' has the batch on axis {value.batch_axis}; nnc "
                    "outputs are batch-first"
                )
            outputs.append(self.shaped(value, _output_node(name), batch_first=k not in output_axes))
        names = self._names()
        nodes = []
        weights: Weights = {}
        for ref, pending in self.pending.items():
            node = pending.node
            nodes.append(
                node.model_copy(
                    update={
                        "name": names[ref],
                        "inputs": tuple(names.get(r, r) for r in node.inputs),
                    }
                )
            )
            for param, array in self.weights[ref].items():
                weights[f"{names[ref]}.{param}"] = array
        model = Model(
            name=model_name,
            inputs=tuple(self.inputs),
            nodes=tuple(nodes),
            outputs=tuple(names.get(r, r) for r in outputs),
        )
        try:
            program = check(Program(models={model_name: model}))
        except NncError as exc:
            exc.message = f"the imported model does not check: {exc.message}"
            raise exc from None
        weights = check_weights(program, model_name, weights, source=self.source)
        return Imported(
            program,
            model_name,
            weights,
            self.notes,
            self.batch_axes,
            self.standardize,
            output_axes,
        )

    def _time_major_attention(self) -> bool:
        """Whether a time-major graph input is read by an attention (not only by
        recurrent layers, whose time-major outputs stay refused)."""
        return any(pending.node.op == "attention" for pending in self.pending.values()) and any(
            axis == 1 for axis in self.batch_axes.values()
        )

    def _names(self) -> dict[str, str]:
        """Final node names: the ONNX node's name where it is a free, valid
        identifier; else ``<op>_<k>`` as nnc names layers itself."""
        taken = {i.name for i in self.inputs}
        names: dict[str, str] = {}
        for ref, pending in self.pending.items():
            preferred = pending.preferred
            if preferred and check_identifier(preferred, "name") is None and preferred not in taken:
                names[ref] = preferred
                taken.add(preferred)
        counters: dict[str, int] = {}
        for ref, pending in self.pending.items():
            if ref in names:
                continue
            op = pending.node.op
            k = counters.get(op, 0)
            while True:
                k += 1
                if f"{op}_{k}" not in taken:
                    break
            counters[op] = k
            names[ref] = f"{op}_{k}"
            taken.add(names[ref])
        return names


def double_note(inputs: list[str], graph: Graph) -> str:
    """What importing a float64 graph in float32 costs, for the import's notes."""
    names = ", ".join(f"'{n}'" for n in inputs)
    which = f"graph input {names} is" if len(inputs) == 1 else f"graph inputs {names} are"
    weights = sum(1 for a in graph.consts.values() if a.dtype == np.float64)
    stored = f", and its {weights} float64 constants are stored as float32" if weights else ""
    return (
        f"{which} float64 (DOUBLE); nnc computes in float32, so the graph is cast to "
        f"float32: the model takes float32 inputs{stored}. float32 keeps about 7 "
        "significant digits of float64's 16: expect outputs to differ from the original "
        "by about 1e-7 relative, more through long or ill-conditioned chains"
    )


# Tests, registered by the pattern modules, for a reader that takes a graph input
# time-major ([t, N, ...]); import_attention registers torch's packed attention.
TIME_MAJOR_READERS: list[Callable[[Graph, str], bool]] = []


def time_major_input(graph: Graph, name: str) -> bool:
    """Whether ``name`` is read only as the input sequence of time-major recurrent
    nodes, or as the input of a time-major attention: the places a graph input has
    its batch second."""
    # A Shape reads no values; the folding pass removes it.
    readers = [r for r in graph.consumers.get(name, []) if r.op_type != "Shape"]
    if bool(readers) and all(
        r.op_type in RECURRENT and r.input[0] == name and _attribute(r, "layout", 0) == 0
        for r in readers
    ):
        return True
    # torch's attention with batch_first=False (the pattern registers its test)
    return any(reads(graph, name) for reads in TIME_MAJOR_READERS)


def _attribute(node: onnx.NodeProto, name: str, default: Any) -> Any:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _input_name(node: onnx.NodeProto, k: int) -> str:
    return node.input[k] if k < len(node.input) else ""


def _output_node(name: str) -> onnx.NodeProto:
    """A stand-in node for messages about a graph output."""
    return helper.make_node("Output", [name], [name], name=f"graph output {name}")


def _identifier(name: str, what: str, taken: set[str]) -> str:
    """``name`` if it is a valid nnc identifier, else a sanitised one; unique in ``taken``."""
    candidate = name
    if check_identifier(candidate, what) is not None:
        candidate = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_")[:64] or what
        if candidate[0].isdigit():
            candidate = f"{what}_{candidate}"
        if check_identifier(candidate, what) is not None:
            candidate = f"{what}_{candidate}"
    base, k = candidate, 1
    while candidate in taken:
        k += 1
        candidate = f"{base}_{k}"
    taken.add(candidate)
    return candidate
