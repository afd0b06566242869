"""PyTorch lowerings of the layout ops. Autograd computes every backward pass.

torch's tensors take no negative slice step, so a slice with one flips the axis and
slices it forward. ``F.pad`` pads any axes with a constant, but reflect and replicate
(nnc's edge) only the last one to three axes of a tensor with one or two more; pads
elsewhere index the axis with the mirrored or clamped positions
(:func:`nnc.ir.ops.layout.pad_source`), the same numbers.
"""

from __future__ import annotations

from nnc.backends.layout_index import batch_axes
from nnc.backends.torch.layers import Layer, Lowering, Site, torch_pads
from nnc.ir.ops.layout import (
    BroadcastTo,
    Pad,
    Slice,
    Squeeze,
    Tile,
    Transpose,
    Unsqueeze,
    pad_source,
)

TORCH_PAD_MODES = {"reflect": "reflect", "edge": "replicate"}


def _args(values: tuple[int, ...]) -> str:
    return ", ".join(str(v) for v in values)


def transpose(node: Transpose, site: Site) -> Layer:
    perm = (0, *batch_axes(node.permutation(site.ins[0].rank)))
    return Layer(forward=f"{site.x}.permute({_args(perm)})")


def squeeze(node: Squeeze, site: Site) -> Layer:
    dims = batch_axes(node.removed(site.ins[0]))
    if not dims:
        return Layer(forward=None)
    arg = str(dims[0]) if len(dims) == 1 else f"({_args(dims)})"
    return Layer(forward=f"{site.x}.squeeze({arg})")


def unsqueeze(node: Unsqueeze, site: Site) -> Layer:
    forward = site.x
    for dim in batch_axes(node.inserted(site.ins[0].rank)):  # ascending: each lands in place
        forward += f".unsqueeze({dim})"
    return Layer(forward=forward)


def slice_(node: Slice, site: Site) -> Layer:
    x = site.ins[0]
    ranges = node.ranges(x)
    flipped = [k for k, (_, _, step, _) in ranges.items() if step < 0]
    parts = [":"]
    for k in range(x.rank):
        if k not in ranges:
            parts.append(":")
            continue
        start, stop, step, length = ranges[k]
        if step < 0:  # read the flipped axis forward: index i is n - 1 - i there
            n = x.shape[k]
            assert isinstance(n, int)
            start, step = n - 1 - start, -step
            stop = start + (length - 1) * step + 1
        text = f"{start}:{stop}"
        parts.append(text if step == 1 else f"{text}:{step}")
    while parts[-1] == ":":
        parts.pop()
    source = site.x
    if flipped:
        source = f"{source}.flip({_args(batch_axes(tuple(sorted(flipped))))})"
    comment = "torch slices forward only: the axis flipped" if flipped else ""
    return Layer(forward=f"{source}[{', '.join(parts)}]", comment=comment)


def pad(node: Pad, site: Site) -> Layer:
    x = site.ins[0]
    pairs = node.pairs(x.rank)
    padded = [k for k, p in enumerate(pairs) if p != (0, 0)]
    if not padded:
        return Layer(forward=None)
    trailing = x.rank - padded[0]  # F.pad pads the last `trailing` dims
    pads = torch_pads(pairs[padded[0] :])
    if node.mode == "constant":
        value = f", value={node.value!r}" if node.value else ""
        return Layer(forward=f"F.pad({site.x}, {pads}{value})")
    if trailing <= 3 and x.rank + 1 - trailing in (1, 2):
        return Layer(forward=f"F.pad({site.x}, {pads}, mode={TORCH_PAD_MODES[node.mode]!r})")
    forward = site.x
    for k in padded:
        n = x.shape[k]
        assert isinstance(n, int)
        index = [":"] * (k + 1) + [str(pad_source(n, *pairs[k], node.mode))]
        forward = f"{forward}[{', '.join(index)}]"
    return Layer(forward=forward, comment=f"{node.mode} padding as an index of each padded axis")


def tile(node: Tile, site: Site) -> Layer:
    return Layer(forward=f"{site.x}.repeat(1, {_args(node.repeats)})")


def broadcast_to(node: BroadcastTo, site: Site) -> Layer:
    lead = len(node.shape) - site.ins[0].rank
    source = site.x if not lead else f"{site.x}[:, {', '.join(['None'] * lead)}]"
    return Layer(forward=f"{source}.expand(-1, {_args(node.shape)})")


LAYOUT: dict[str, Lowering] = {
    "transpose": transpose,
    "squeeze": squeeze,
    "unsqueeze": unsqueeze,
    "slice": slice_,
    "pad": pad,
    "tile": tile,
    "broadcast_to": broadcast_to,
}
