"""How every Python backend writes ``matmul`` on batched tensors (one rule, one place).

Values carry a leading batch axis (``[N, *per_sample]``; a ``param`` has ``N = 1``),
and a framework's matmul would take a batch of vectors ``[N, k]`` for one matrix. So
each operand is indexed into a stack of matrices first: a per-sample vector gets its
row (left) or column (right) axis, and the operand of lower rank gets size-1 axes
right after its batch axis, so the batch axes align and the framework's broadcasting
does the rest. The output index removes the vector axes again. When both operands
are per-sample matrices of one rank, every index is empty: ``a @ b``.

>>> matmul_indexing(1, 2)
('[:, None]', '', '[..., 0, :]')
>>> matmul_indexing(3, 1)
('', '[:, None, :, None]', '[..., 0]')
>>> matmul_indexing(2, 2)
('', '', '')
"""

from __future__ import annotations


def matmul_indexing(a_rank: int, b_rank: int) -> tuple[str, str, str]:
    """Index suffixes for ``a``, ``b`` and the product, from the per-sample ranks."""
    rank = max(a_rank, b_rank, 2)
    if a_rank == 1:
        a_index = "[:" + ", None" * (rank - 1) + "]"
    else:
        a_index = "[:" + ", None" * (rank - a_rank) + "]" if a_rank < rank else ""
    if b_rank == 1:
        b_index = "[:" + ", None" * (rank - 2) + ", :, None]"
    else:
        b_index = "[:" + ", None" * (rank - b_rank) + "]" if b_rank < rank else ""
    out = {(True, True): "[..., 0, 0]", (True, False): "[..., 0, :]", (False, True): "[..., 0]"}
    return a_index, b_index, out.get((a_rank == 1, b_rank == 1), "")


def matmul_expression(a: str, b: str, a_rank: int, b_rank: int, function: str = "") -> str:
    """``a @ b`` (or ``function(a, b)``) with the indexing of :func:`matmul_indexing`."""
    a_index, b_index, out = matmul_indexing(a_rank, b_rank)
    product = (
        f"{function}({a}{a_index}, {b}{b_index})" if function else f"{a}{a_index} @ {b}{b_index}"
    )
    return f"({product}){out}" if out and not function else product + out


def matmul_axes(a_rank: int, b_rank: int) -> tuple[list[int], list[int], list[int]]:
    """The same rule as axes of the batched tensors (for ONNX ``Unsqueeze`` and
    ``Squeeze``): the axes inserted into ``a`` and ``b``, and those removed from the
    product.

    >>> matmul_axes(1, 2), matmul_axes(3, 1), matmul_axes(1, 1)
    (([1], [], [1]), ([], [1, 3], [3]), ([1], [2], [1, 2]))
    """
    rank = max(a_rank, b_rank, 2)
    a_axes = list(range(1, rank - a_rank + 1)) if a_rank > 1 else list(range(1, rank))
    b_axes = [*range(1, rank - 1), rank] if b_rank == 1 else list(range(1, rank - b_rank + 1))
    out = ([rank - 1] if a_rank == 1 else []) + ([rank] if b_rank == 1 else [])
    return a_axes, b_axes, out
