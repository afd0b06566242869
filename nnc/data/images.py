"""How to draw samples as pictures: the image geometry and value range of a data set.

The training driver draws generated samples (GAN sample grids) and reconstructions
(autoencoders) when the data are images: a built-in image set such as ``digits``
(its geometry after ``upscale``, its range after ``scale``), or a file whose samples
are ``[C, H, W]`` with 1 or 3 channels, or ``[n]`` with ``n`` a square (one
channel). Anything else has no picture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nnc.ir.datasets import CATALOG
from nnc.ir.training import DataFile, Dataset, TextData
from nnc.ir.types import Dim


@dataclass(frozen=True)
class ImageGeometry:
    """Samples seen as images: ``channels`` x ``height`` x ``width`` values (row-major,
    channels first) whose range ``[lo, hi]`` maps to black..white."""

    channels: int
    height: int
    width: int
    lo: float
    hi: float

    def to_pixels(self, samples: np.ndarray) -> np.ndarray:
        """``[N, H, W]`` (one channel) or ``[N, H, W, 3]`` values in [0, 1], clipped."""
        images = np.asarray(samples, dtype=np.float64).reshape(
            len(samples), self.channels, self.height, self.width
        )
        unit = np.clip((images - self.lo) / max(self.hi - self.lo, 1e-12), 0.0, 1.0)
        return unit[:, 0] if self.channels == 1 else unit.transpose(0, 2, 3, 1)


def image_geometry(
    source: Dataset | DataFile | TextData,
    sample_shape: tuple[Dim, ...],
    x: np.ndarray | None = None,
) -> ImageGeometry | None:
    """The geometry of a recipe's samples as images, or None when they are not images.

    ``x`` (the prepared samples) gives a file's value range.

    >>> image_geometry(Dataset(name="digits", scale="symmetric"), (64,))
    ImageGeometry(channels=1, height=8, width=8, lo=-1.0, hi=1.0)
    """
    if isinstance(source, TextData) or not all(isinstance(d, int) for d in sample_shape):
        return None  # text windows are no images
    size = math.prod(int(d) for d in sample_shape)
    if isinstance(source, Dataset):
        info = CATALOG.get(source.name)
        if info is None or info.image is None or info.value_range is None:
            return None
        c, h, w = info.image
        f = source.upscale
        lo, hi = {"unit": (0.0, 1.0), "symmetric": (-1.0, 1.0)}.get(source.scale, info.value_range)
        if source.binarize:
            lo, hi = 0.0, 1.0
        shape: tuple[int, int, int] | None = (c, h * f, w * f)
    else:
        shape = _file_image(tuple(int(d) for d in sample_shape))
        if x is None or x.size == 0:
            return None
        lo, hi = float(np.min(x)), float(np.max(x))
    if shape is None:
        return None
    if math.prod(shape) != size:
        return None
    return ImageGeometry(shape[0], shape[1], shape[2], lo, hi)


def _file_image(shape: tuple[int, ...]) -> tuple[int, int, int] | None:
    if len(shape) == 3 and shape[0] in (1, 3):
        return shape[0], shape[1], shape[2]
    if len(shape) == 2:
        return 1, shape[0], shape[1]
    if len(shape) == 1 and shape[0] >= 4 and math.isqrt(shape[0]) ** 2 == shape[0]:
        side = math.isqrt(shape[0])
        return 1, side, side
    return None
