"""Lowerings of ``matmul`` and ``param`` (kernels in ``kernels/linalg.py``).

The forward product is written as ``a @ b`` with the indexing of
:mod:`nnc.backends.matmul_plan`; the backward calls the gradient kernels, which sum
each operand's gradient back over the axes it was broadcast along (the batch axis
of a ``param`` included). A ``param`` is its canonical array with a leading batch
axis of size 1; its gradient is that of its value, summed over the batch.
"""

from __future__ import annotations

from nnc.backends.matmul_plan import matmul_expression
from nnc.backends.numpy.walk import Lowering, NodeContext


def _matmul_forward(c: NodeContext) -> None:
    a_rank, b_rank = (t.rank for t in c.in_types)
    c.line(f"{c.y} = {matmul_expression(c.x(0), c.x(1), a_rank, b_rank)}")


def _matmul_backward(c: NodeContext) -> None:
    for i, kernel in enumerate(("matmul_grad_a", "matmul_grad_b")):
        if c.needs(i):
            c.grad_input(i, f"{c.kernel(kernel)}({c.dy}, {c.x(0)}, {c.x(1)})")


def _param_forward(c: NodeContext) -> None:
    c.line(f"{c.y} = {c.param('value')}[None]  # batch axis of size 1")


def _param_backward(c: NodeContext) -> None:
    c.grad_param("value", f"{c.dy}.sum(axis=0)")


LOWERINGS: dict[str, Lowering] = {
    "matmul": Lowering(_matmul_forward, _matmul_backward),
    "param": Lowering(_param_forward, _param_backward),
}
