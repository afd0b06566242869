"""The builder every ONNX lowering writes to: ONNX nodes and initializers for one flat
IR model, and the signature of a lowering. Its own module so that the lowerings and
the exporter that collects them (:mod:`nnc.backends.onnx.graph`) form no circle."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from nnc.ir.base import Op
from nnc.ir.program import Model
from nnc.ir.types import TensorType


class GraphBuilder:
    """Collects ONNX nodes and initializers while lowering one flat IR model.

    ``value(ref)`` is the ONNX tensor holding an IR value; lowerings read their
    inputs with it and publish their result with :meth:`bind`.
    """

    def __init__(self, model: Model, weights: Mapping[str, np.ndarray], opset: int):
        self.model = model
        self.weights = weights
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.values: dict[str, str] = {i.name: i.name for i in model.inputs}
        self.types: dict[str, TensorType] = {i.name: i.type for i in model.inputs}
        self.used_names: set[str] = {i.name for i in model.inputs}

    # -- values ---------------------------------------------------------------------

    def value(self, ref: str) -> str:
        """The ONNX tensor that holds IR value ``ref``."""
        return self.values[ref]

    def input_type(self, node: Op, k: int = 0) -> TensorType:
        """The per-sample type of a node's k-th input."""
        return self.types[node.inputs[k]]

    def bind(self, node: Op, tensor: str) -> None:
        """Record that ``tensor`` holds the output of ``node``."""
        self.values[node.name] = tensor
        self.types[node.name] = node.type

    def alias(self, node: Op) -> None:
        """The node is the identity at inference: its output is its input's tensor."""
        self.bind(node, self.value(node.inputs[0]))

    # -- emitting -------------------------------------------------------------------

    def unique(self, name: str) -> str:
        candidate, k = name, 1
        while candidate in self.used_names:
            k += 1
            candidate = f"{name}_{k}"
        self.used_names.add(candidate)
        return candidate

    def op(
        self,
        op_type: str,
        inputs: Sequence[str],
        output: str,
        *,
        name: str | None = None,
        **attributes: Any,
    ) -> str:
        """Append one ONNX node with a single output; return the output's name.

        The node is named after its output unless ``name`` is given.
        """
        output = self.unique(output)
        self.node(op_type, inputs, [output], name or output, **attributes)
        return output

    def node(
        self,
        op_type: str,
        inputs: Sequence[str],
        outputs: Sequence[str],
        name: str,
        **attributes: Any,
    ) -> None:
        """Append one ONNX node; ``""`` leaves an optional output uncomputed."""
        self.nodes.append(
            helper.make_node(op_type, list(inputs), list(outputs), name=name, **attributes)
        )

    def initializer(self, name: str, array: np.ndarray) -> str:
        """Add a constant tensor; return its (unique) name."""
        name = self.unique(name)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def param(self, node: Op, param: str) -> str:
        """A canonical parameter of ``node``, stored as it is."""
        return self.initializer(f"{node.name}.{param}", self.weights[f"{node.name}.{param}"])

    def weight(self, node: Op, param: str) -> np.ndarray:
        return np.asarray(self.weights[f"{node.name}.{param}"], dtype=np.float32)

    def scalar(self, name: str, value: float) -> str:
        return self.initializer(name, np.array(value, dtype=np.float32))

    def ints(self, name: str, values: Sequence[int]) -> str:
        return self.initializer(name, np.array(list(values), dtype=np.int64))

    # -- ops whose form changed between opsets -------------------------------------

    def squeeze(self, x: str, axes: Sequence[int], output: str, **options: Any) -> str:
        """``Squeeze``: axes an input from opset 13, an attribute before."""
        return self._axes_op("Squeeze", x, axes, output, 13, **options)

    def unsqueeze(self, x: str, axes: Sequence[int], output: str, **options: Any) -> str:
        """``Unsqueeze``: axes an input from opset 13, an attribute before."""
        return self._axes_op("Unsqueeze", x, axes, output, 13, **options)

    def reduce_mean(self, x: str, axes: Sequence[int], output: str) -> str:
        """``ReduceMean`` keeping dims: axes an input from opset 18, an attribute before."""
        return self._axes_op("ReduceMean", x, axes, output, 18, keepdims=1)

    def reduce(self, op_type: str, x: str, axes: Sequence[int], output: str, keepdims: bool) -> str:
        """``ReduceSum``/``ReduceMean``/``ReduceMax``/``ReduceMin``: the axes are an input
        from opset 13 for ReduceSum and from opset 18 for the others, an attribute before."""
        first = 13 if op_type == "ReduceSum" else 18
        return self._axes_op(op_type, x, axes, output, first, keepdims=int(keepdims))

    def _axes_op(
        self, op_type: str, x: str, axes: Sequence[int], output: str, first: int, **options: Any
    ) -> str:
        if self.opset >= first:
            return self.op(op_type, [x, self.ints(f"{output}/axes", axes)], output, **options)
        return self.op(op_type, [x], output, axes=list(axes), **options)


# An IR op's lowering: reads its inputs from the builder, emits nodes, binds its output.
Lowering = Callable[[GraphBuilder, Any], None]
