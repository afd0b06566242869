"""Kernels for the reductions: where the gradient of a max or min goes."""

from __future__ import annotations

import numpy as np

__all__ = ["first_extreme"]


def first_extreme(x, axes, largest=True):
    """A 0/1 mask of ``x``'s shape marking, for each slice over ``axes``, its first
    maximum (``largest``) or minimum in row-major order of those axes: the element
    that receives the gradient of a max or min reduction, ties included."""
    kept = [a for a in range(x.ndim) if a not in axes]
    moved = np.transpose(x, kept + list(axes))
    flat = moved.reshape((*moved.shape[: len(kept)], -1))
    index = flat.argmax(axis=-1) if largest else flat.argmin(axis=-1)
    mask = np.zeros_like(flat)
    np.put_along_axis(mask, index[..., None], 1, axis=-1)
    return np.transpose(mask.reshape(moved.shape), np.argsort(kept + list(axes)))
