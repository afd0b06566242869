"""Inline model calls: Program + model -> one flat, typed Model.

Backends that want a flat graph (NumPy, ONNX) lower the result. Nodes of a callee
are renamed ``<call>.<node>``, so parameter names are unchanged:
``encoder_1.dense_1.weight`` names the same tensor before and after. The result is a
lowering form, not source: its dotted names are not valid ``.nn`` identifiers.
"""

from __future__ import annotations

from collections.abc import Iterator

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
    # Depth first through the calls with an explicit stack (a chain of calls may be
    # thousands of models long): one frame per call being unfolded.
    top = _Frame(m, "", {}, None)
    stack = [top]
    while stack:
        frame = stack[-1]
        node = next(frame.rest, None)
        if node is None:
            stack.pop()
            if frame.call is not None:
                parent = stack[-1]
                for k, out in enumerate(frame.model.outputs):
                    key = frame.call.name if k == 0 else f"{frame.call.name}:{k}"
                    parent.rename[key] = frame.resolve(out)
            continue
        inputs = tuple(frame.resolve(ref) for ref in node.inputs)
        if isinstance(node, Call):
            callee = program.models[node.model]
            bound = {d.name: a for d, a in zip(callee.inputs, inputs, strict=True)}
            stack.append(_Frame(callee, f"{frame.prefix}{node.name}.", bound, node))
            continue
        nodes.append(node.model_copy(update={"name": frame.prefix + node.name, "inputs": inputs}))
    outputs = tuple(top.resolve(o) for o in m.outputs)
    return m.model_copy(update={"nodes": tuple(nodes), "outputs": outputs})


class _Frame:
    """One model being unfolded: its node names take ``prefix``; ``bound`` maps its
    declared inputs, and ``rename`` its calls' outputs, to names in the flat model."""

    def __init__(self, model: Model, prefix: str, bound: dict[str, str], call: Call | None):
        self.model = model
        self.prefix = prefix
        self.bound = bound
        self.call = call
        self.rename: dict[str, str] = {}
        self.rest: Iterator[Node] = iter(model.nodes)

    def resolve(self, ref: str) -> str:
        if ref in self.rename:
            return self.rename[ref]
        if ref in self.bound:
            return self.bound[ref]
        return self.prefix + ref if self.call is not None else ref
