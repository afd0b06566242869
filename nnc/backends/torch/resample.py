"""PyTorch lowerings of resize, depth_to_space and space_to_depth.

Nearest resize is ``repeat_interleave`` per spatial dim (exactly ``floor(o / scale)``,
with no float index arithmetic); bilinear is ``F.interpolate`` with the integer scale
factor, whose ``align_corners=False`` is nnc's half-pixel rule. torch's
``pixel_shuffle`` uses the CRD channel order, not nnc's DCR, so the block moves are
written as reshape and permute.
"""

from __future__ import annotations

from nnc.backends.torch.layers import Layer, Lowering, Site, call, size
from nnc.ir.ops.resample import DepthToSpace, Resize, SpaceToDepth
from nnc.ir.types import TensorType


def resize(node: Resize, site: Site) -> Layer:
    scales = node.scales(site.ins[0].rank - 1)
    if node.mode == "nearest":
        forward = site.x
        for dim, s in enumerate(scales, start=2):
            if s != 1:
                forward = f"{forward}.repeat_interleave({s}, dim={dim})"
        return Layer(forward=forward, comment="nearest: output o reads input floor(o / scale)")
    mode = "bilinear" if len(scales) == 2 else "linear"
    args = call(scale_factor=size(scales), mode=mode, align_corners=node.align_corners)
    return Layer(forward=f"F.interpolate({site.x}, {args})")


def _static(t: TensorType) -> tuple[int, ...]:
    """The block ops' shape rule requires static dims."""
    return tuple(int(d) for d in t.shape)


def depth_to_space(node: DepthToSpace, site: Site) -> Layer:
    b, (c, h, w) = node.block, _static(site.out)
    return Layer(
        forward=f"{site.x}.reshape(-1, {b}, {b}, {c}, {h // b}, {w // b})"
        f".permute(0, 3, 4, 1, 5, 2).reshape(-1, {c}, {h}, {w})",
        comment="DCR order (torch's pixel_shuffle is CRD)",
    )


def space_to_depth(node: SpaceToDepth, site: Site) -> Layer:
    b, (c, h, w) = node.block, _static(site.ins[0])
    return Layer(
        forward=f"{site.x}.reshape(-1, {c}, {h // b}, {b}, {w // b}, {b})"
        f".permute(0, 3, 5, 1, 2, 4).reshape(-1, {c * b * b}, {h // b}, {w // b})",
        comment="DCR order, the inverse of depth_to_space",
    )


RESAMPLE: dict[str, Lowering] = {
    "resize": resize,
    "depth_to_space": depth_to_space,
    "space_to_depth": space_to_depth,
}
