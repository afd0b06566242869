"""Lowering of attention (``kernels/attention.py``): the inputs and parameters are
passed to one forward and one backward kernel; self-attention passes its input as
query, key and value, and its gradient sums the three contributions."""

from __future__ import annotations

from nnc.backends.codegen import py_literal
from nnc.backends.numpy.walk import Lowering, NodeContext
from nnc.ir.ops.attention import Attention

PARAMS = [f"{p}.{kind}" for p in ("query", "key", "value", "output") for kind in ("weight", "bias")]


def _node(c: NodeContext) -> Attention:
    assert isinstance(c.node, Attention)
    return c.node


def _params(c: NodeContext) -> str:
    """The parameter tuple; where it is too long for an argument (long node names),
    bound to a local first, one parameter a line."""
    items = [c.param(p) if c.has_param(p) else "None" for p in PARAMS]
    text = "(" + ", ".join(items) + ")"
    if len(text) <= 60:
        return text
    name = c.local("params")
    c.w.lines_([f"{name} = (", *(f"    {item}," for item in items), ")"])
    return name


def _forward(c: NodeContext) -> None:
    node = _node(c)
    (iq, ik, iv), im = node.split_inputs(c.in_types)
    args = [c.x(iq), c.x(ik), c.x(iv), _params(c), str(node.heads)]
    if node.causal:
        args.append("causal=True")
    if im is not None:
        args.append(f"mask={c.x(im)}")
    if node.dropout > 0:
        args.append(f"rate={py_literal(node.dropout)}")
        args.append(f"rng=self.rng if {c.training_flag()} else None")
    c.call(f"{c.y}, {c.temp('saved')}", c.kernel("attention_forward"), args)


def _backward(c: NodeContext) -> None:
    d_inputs = c.local("d_qkv")
    targets = ", ".join(c.grad_target(p) if c.has_param(p) else "_" for p in PARAMS)
    args = [c.dy, c.temp("saved"), _params(c)]
    c.call(f"{d_inputs}, ({targets})", c.kernel("attention_backward"), args)
    (iq, ik, iv), im = _node(c).split_inputs(c.in_types)
    for k, i in enumerate((iq, ik, iv)):
        c.grad_input(i, f"{d_inputs}[{k}]")
    if im is not None:  # the mask only selects keys: its gradient is 0
        c.grad_input(im, f"np.zeros_like({c.x(im)})")


LOWERINGS: dict[str, Lowering] = {"attention": Lowering(_forward, _backward)}
