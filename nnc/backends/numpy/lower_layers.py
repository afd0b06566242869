"""Lowerings of dense and embedding layers, and of the ops that only move, mask or
join values: flatten, reshape, dropout and concat (add: lower_arith)."""

from __future__ import annotations

from nnc.backends.codegen import py_literal
from nnc.backends.numpy.walk import WIDTH, Lowering, NodeContext, batch_axis
from nnc.ir.ops.dense import Dense, Embedding
from nnc.ir.ops.graph import Concat
from nnc.ir.ops.reshape import Dropout, Reshape


def _dense_forward(c: NodeContext) -> None:
    expr = f"{c.x()} @ {c.param('weight')}.T"
    if c.has_param("bias"):
        expr += f" + {c.param('bias')}"
    if c.in_types[0].rank == 2:
        c.line("# applied at every time step: [N, T, F] @ [F, units]")
    c.line(f"{c.y} = {expr}")


def _dense_backward(c: NodeContext) -> None:
    assert isinstance(c.node, Dense)
    x, dy = c.x(), c.dy
    if c.in_types[0].rank == 1:
        c.grad_param("weight", f"{dy}.T @ {x}")
        c.grad_param("bias", f"{dy}.sum(axis=0)")
    else:  # a sequence: every time step adds to the gradient
        features = c.in_types[0].shape[-1]
        c.grad_param("weight", f"{dy}.reshape(-1, {c.node.units}).T @ {x}.reshape(-1, {features})")
        c.grad_param("bias", f"{dy}.sum(axis=(0, 1))")
    c.grad_input(0, f"{dy} @ {c.param('weight')}")


def _embedding_forward(c: NodeContext) -> None:
    c.line(f"{c.y} = {c.kernel('embedding_lookup')}({c.param('weight')}, {c.x()})")


def _embedding_backward(c: NodeContext) -> None:
    assert isinstance(c.node, Embedding)
    if c.trains("weight"):
        kernel = c.kernel("embedding_backward")
        c.grad_param("weight", f"{kernel}({c.x()}, {c.dy}, {c.node.vocab})")


def _flatten_forward(c: NodeContext) -> None:
    c.line(f"{c.y} = {c.x()}.reshape(len({c.x()}), -1)")


def _reshape_forward(c: NodeContext) -> None:
    assert isinstance(c.node, Reshape)
    dims = ", ".join(py_literal(d) for d in c.node.shape)
    c.line(f"{c.y} = {c.x()}.reshape(len({c.x()}), {dims})")


def _reshape_backward(c: NodeContext) -> None:
    c.grad_input(0, f"{c.dy}.reshape({c.x()}.shape)")


def _dropout_forward(c: NodeContext) -> None:
    assert isinstance(c.node, Dropout)
    x, mask, keep = c.x(), c.temp("mask"), 1 - c.node.rate
    with c.block("if training:"):
        c.line(
            f"# inverted dropout: keep each value with probability {keep!r}, scaled by 1/{keep!r}"
        )
        kept = c.local("kept")
        draw = f"self.rng.random({x}.shape, dtype={x}.dtype)"
        if len(c.w.indent * c.w.level) + len(f"{kept} = {draw} < {keep!r}") <= WIDTH:
            c.line(f"{kept} = {draw} < {keep!r}")
        else:  # a long value name: draw, then compare
            c.call(kept, "self.rng.random", [f"{x}.shape", f"dtype={x}.dtype"])
            c.line(f"{kept} = {kept} < {keep!r}")
        c.line(f"{mask} = {kept}.astype({x}.dtype) / {keep!r}")
        c.line(f"{c.y} = {x} * {mask}")
    with c.block("else:"):
        c.line(f"{mask} = None  # evaluation: the identity")
        c.line(f"{c.y} = {x}")


def _dropout_backward(c: NodeContext) -> None:
    mask, dy = c.temp("mask"), c.dy
    c.grad_input(0, f"{dy} if {mask} is None else {dy} * {mask}")


def _concat_axis(c: NodeContext) -> int:
    assert isinstance(c.node, Concat)
    return batch_axis(c.node.axis % c.in_types[0].rank)


def _concat_forward(c: NodeContext) -> None:
    c.line(f"{c.y} = np.concatenate([{', '.join(c.xs)}], axis={_concat_axis(c)})")


def _concat_backward(c: NodeContext) -> None:
    axis = _concat_axis(c)
    # Where each input's slice ends: literal sizes where they are static.
    bounds: list[str] = []
    total: int | str = 0
    for i, t in enumerate(c.in_types[:-1]):
        size = t.shape[axis - 1]
        if isinstance(total, int) and isinstance(size, int):
            total += size
        else:
            term = str(size) if isinstance(size, int) else f"{c.x(i)}.shape[{axis}]"
            total = f"{total} + {term}" if total != 0 else term
        bounds.append(str(total))
    parts = c.local("parts")
    c.line(f"{parts} = np.split({c.dy}, [{', '.join(bounds)}], axis={axis})")
    for i in range(len(c.node.inputs)):
        c.grad_input(i, f"{parts}[{i}]")


LOWERINGS: dict[str, Lowering] = {
    "dense": Lowering(_dense_forward, _dense_backward),
    "embedding": Lowering(_embedding_forward, _embedding_backward),
    "flatten": Lowering(_flatten_forward, _reshape_backward),
    "reshape": Lowering(_reshape_forward, _reshape_backward),
    "dropout": Lowering(_dropout_forward, _dropout_backward),
    "concat": Lowering(_concat_forward, _concat_backward),
}
