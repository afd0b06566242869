"""PyTorch lowerings of learned_positions and sinusoidal_positions.

The learned table is an ``nn.Parameter`` ``[max_len, d]`` (its state_dict name is the
attribute itself), added as ``x + table[:t]``. The sinusoidal encoding is the
``sinusoidal_positions`` helper: the table built in float64 from the input's length,
rounded to the input's dtype once, as the NumPy backend does.
"""

from __future__ import annotations

from nnc.backends.codegen import py_literal
from nnc.backends.torch.layers import Layer, Lowering, Site
from nnc.ir.ops.positions import LearnedPositions, SinusoidalPositions


def learned_positions(node: LearnedPositions, site: Site) -> Layer:
    t, d = site.ins[0].shape
    length = t if isinstance(t, int) else f"{site.x}.shape[1]"
    return Layer(
        module=f"nn.Parameter(torch.empty({node.max_len}, {d}))",
        forward=f"{site.x} + {site.attr}[:{length}]",
        renames={"weight": ""},
    )


def sinusoidal_positions(node: SinusoidalPositions, site: Site) -> Layer:
    return Layer(
        forward=f"sinusoidal_positions({site.x}, {py_literal(node.base)})",
        helpers=("sinusoidal_positions",),
    )


POSITIONS: dict[str, Lowering] = {
    "learned_positions": learned_positions,
    "sinusoidal_positions": sinusoidal_positions,
}
