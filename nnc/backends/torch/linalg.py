"""PyTorch lowerings of ``matmul`` and ``param``.

``param`` is an ``nn.Parameter`` of its canonical shape (its state_dict name is the
attribute itself), used as ``self.<attr>[None]``: a leading batch axis of size 1.
``matmul`` is ``torch.matmul``, which follows NumPy's rule, after the indexing of
:mod:`nnc.backends.matmul_plan`, so a batch of per-sample vectors is never taken
for one matrix.
"""

from __future__ import annotations

from nnc.backends.matmul_plan import matmul_expression
from nnc.backends.torch.layers import Layer, Lowering, Site
from nnc.ir.ops.linalg import Matmul, Param


def matmul(node: Matmul, site: Site) -> Layer:
    a, b = site.xs
    a_rank, b_rank = (t.rank for t in site.ins)
    return Layer(forward=matmul_expression(a, b, a_rank, b_rank, "torch.matmul"))


def param(node: Param, site: Site) -> Layer:
    dims = ", ".join(str(d) for d in node.shape)
    return Layer(
        module=f"nn.Parameter(torch.empty({dims}))",
        forward=f"{site.attr}[None]",
        renames={"value": ""},
    )


LINALG: dict[str, Lowering] = {"matmul": matmul, "param": param}
