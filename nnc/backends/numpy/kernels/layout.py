"""Layout kernels over batched arrays ``[N, *sample]``: the backward passes of pad and
tile (the forward passes are one NumPy call each, written inline).

``pads`` holds one ``(begin, end)`` pair per axis of the batched array (the batch's
is ``(0, 0)``); ``repeats`` one count per axis, the batch's 1.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pad_backward", "tile_backward"]


def pad_backward(d_y, pads, mode):
    """The gradient of ``np.pad(x, pads, mode)``. Constant padding drops the pads;
    ``reflect`` and ``edge`` add each padded element's gradient to the element it
    copies (its mirror image, or the edge)."""
    d_x = d_y
    for axis, (begin, end) in enumerate(pads):
        if not begin and not end:
            continue
        n = d_x.shape[axis] - begin - end
        if mode == "constant":
            d_x = np.take(d_x, np.arange(begin, begin + n), axis=axis)
            continue
        source = np.arange(-begin, n + end)
        if mode == "edge":
            source = np.clip(source, 0, n - 1)
        else:  # reflect: mirrored about the first and last elements, not repeating them
            source = np.abs(source)
            source = np.where(source >= n, 2 * (n - 1) - source, source)
        shape = list(d_x.shape)
        shape[axis] = n
        summed = np.zeros(shape, d_x.dtype)
        index = (slice(None),) * axis + (source,)
        np.add.at(summed, index, d_x)  # type: ignore[arg-type]
        d_x = summed
    return d_x


def tile_backward(d_y, repeats):
    """The gradient of ``np.tile(x, repeats)``: the sum over the copies."""
    split = []
    for size, r in zip(d_y.shape, repeats, strict=True):
        split += [r, size // r]
    summed = d_y.reshape(split).sum(axis=tuple(range(0, len(split), 2)))
    return summed
