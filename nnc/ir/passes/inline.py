"""Inline model calls: Program + model -> one flat, typed Model.

Backends that want a flat graph (NumPy, ONNX) lower the result. Nodes of a callee
are renamed ``<call>.<node>``, so parameter names are unchanged:
``encoder_1.dense_1.weight`` names the same tensor before and after. The result is a
lowering form, not source: its dotted names are not valid ``.nn`` identifiers.
"""

from __future__ import annotations

from nnc.ir.ops import Node
from nnc.ir.ops.graph import Call
from nnc.ir.program import Model, Program


def inline_calls(program: Program, model: Model | str) -> Model:
    """The model with every call (recursively) replaced by the callee's nodes.

    >>> import nnc
    >>> flat = inline_calls(nnc.load("examples/autoencoder.nn"), "Autoencoder")
    >>> [n.name for n in flat.nodes][:3]
    ['encoder_1.dense_1', 'encoder_1.relu_1', 'encoder_1.dense_2']
    """
    m = program.models[model] if isinstance(model, str) else model
    nodes: list[Node] = []
    rename: dict[str, str] = {}
    for node in m.nodes:
        inputs = tuple(rename.get(ref, ref) for ref in node.inputs)
        if not isinstance(node, Call):
            nodes.append(node.model_copy(update={"inputs": inputs}))
            continue
        callee = inline_calls(program, node.model)
        prefix = f"{node.name}."
        inner: dict[str, str] = {
            decl.name: actual for decl, actual in zip(callee.inputs, inputs, strict=True)
        }
        for child in callee.nodes:
            renamed = child.model_copy(
                update={
                    "name": prefix + child.name,
                    "inputs": tuple(inner.get(r, prefix + r) for r in child.inputs),
                }
            )
            nodes.append(renamed)
        for k, out in enumerate(callee.outputs):
            target = inner.get(out, prefix + out)
            rename[node.name if k == 0 else f"{node.name}:{k}"] = target
    outputs = tuple(rename.get(o, o) for o in m.outputs)
    return m.model_copy(update={"nodes": tuple(nodes), "outputs": outputs})
