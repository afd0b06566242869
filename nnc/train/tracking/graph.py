"""A trained model as a TensorBoard graph, drawn from the checked IR.

Every backend trains the same IR, so the graph comes from it rather than from one
framework's tracer: one ``NodeDef`` per node (its op, its inputs, its attributes and
parameter shapes as text), the model inputs as placeholders, and each output's shape
(batch dim ``-1``) on ``_output_shapes``, which the graphs dashboard writes on the
edges. Models used as layers are inlined, their nodes grouped under the call's name
(``encoder_1/dense_1``); a GAN's two models sit side by side under their roles.
"""

from __future__ import annotations

from typing import Any

from nnc.ir.passes import inline_calls, model_params
from nnc.ir.program import Program
from nnc.ir.types import TensorType, format_shape


def graph_def(program: Program, models: dict[str, str]) -> Any:
    """The ``GraphDef`` of ``models`` (scope -> model name; scope "" for a single one)."""
    from tensorboard.compat.proto import graph_pb2

    graph = graph_pb2.GraphDef()
    for scope, name in models.items():
        _add_model(graph, program, name, scope)
    return graph


def _add_model(graph: Any, program: Program, name: str, scope: str) -> None:
    from tensorboard.compat.proto import attr_value_pb2

    flat = inline_calls(program, name)
    params: dict[str, list[str]] = {}
    for p in model_params(program, program.models[name]):
        params.setdefault(p.node, []).append(f"{p.spec.name} {format_shape(p.spec.shape)}")

    def ref(value: str) -> str:
        node, _, index = value.partition(":")
        return _scoped(scope, node) + (f":{index}" if index else "")

    for i in flat.inputs:
        added = graph.node.add(name=_scoped(scope, i.name), op="Placeholder")
        added.attr["_output_shapes"].CopyFrom(_shapes(attr_value_pb2, [i.type]))
        added.attr["dtype"].s = i.type.dtype.encode()
    for n in flat.nodes:
        added = graph.node.add(name=_scoped(scope, n.name), op=n.op)
        added.input.extend(ref(v) for v in n.inputs)
        added.attr["_output_shapes"].CopyFrom(_shapes(attr_value_pb2, n.outs))
        for key, value in n.attributes().items():
            added.attr[key].s = _text(value).encode()
        if n.name in params:
            added.attr["parameters"].s = ", ".join(params[n.name]).encode()
    for k, out in enumerate(flat.outputs):
        added = graph.node.add(name=_scoped(scope, f"output_{k + 1}"), op="Output")
        added.input.append(ref(out))


def _scoped(scope: str, name: str) -> str:
    path = name.replace(".", "/")
    return f"{scope}/{path}" if scope else path


def _shapes(attr_value_pb2: Any, types: tuple[TensorType, ...] | list[TensorType]) -> Any:
    value = attr_value_pb2.AttrValue()
    for t in types:
        shape = value.list.shape.add()
        for d in (-1, *t.shape):
            shape.dim.add(size=d if isinstance(d, int) else -1)
    return value


def _text(value: object) -> str:
    if hasattr(value, "model_dump"):
        data = value.model_dump(mode="json")  # an initializer spec
        kind = data.pop("kind", "")
        args = ", ".join(f"{k} = {v}" for k, v in data.items())
        return f"{kind}({args})" if args else str(kind)
    return str(value)
