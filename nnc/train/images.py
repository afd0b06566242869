"""Pictures of samples, drawn once per epoch: a GAN's generated samples
(``samples/epoch-000012.png``, a grid from fixed noise) and an autoencoder's held-out
inputs above their reconstructions (``reconstructions/epoch-000012.png``).

Only for image data (:mod:`nnc.data.images`); matplotlib is optional, as for
``loss.png``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from nnc.data.images import ImageGeometry
from nnc.train.plot import matplotlib_available, new_figure, save_figure

SAMPLES = "samples"
RECONSTRUCTIONS = "reconstructions"
GRID = 8  # sample grids are 8 x 8
SHOWN = 8  # reconstructions of 8 held-out samples


def epoch_image(folder: Path, epoch: int) -> Path:
    """``folder/epoch-000012.png`` for 1-based ``epoch``."""
    return folder / f"epoch-{epoch:06d}.png"


def mosaic(pixels: np.ndarray, rows: int, cols: int, gap: int = 1) -> np.ndarray:
    """Images ``[N, H, W]`` (or ``[N, H, W, 3]``) laid out row by row on a grey
    background, ``gap`` pixels apart; missing cells stay grey.

    >>> mosaic(np.ones((3, 2, 2)), rows=2, cols=2).shape
    (5, 5)
    """
    n, h, w = pixels.shape[:3]
    canvas = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, *pixels.shape[3:]), 0.5)
    for k in range(min(n, rows * cols)):
        r, c = divmod(k, cols)
        canvas[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = pixels[k]
    return canvas


def _show(ax: Any, image: np.ndarray) -> None:
    ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def save_sample_grid(
    samples: np.ndarray, geometry: ImageGeometry, path: Path, title: str
) -> Path | None:
    """Draw up to 64 samples as an 8 x 8 grid; None without matplotlib."""
    if not matplotlib_available():
        return None
    pixels = geometry.to_pixels(samples[: GRID * GRID])
    rows = math.ceil(len(pixels) / GRID)
    figure = new_figure(4.4, 4.4 * rows / GRID + 0.4)
    ax = figure.add_subplot()
    _show(ax, mosaic(pixels, rows, GRID))
    ax.set_title(title, fontsize="medium")
    figure.tight_layout()
    return save_figure(figure, path)


def save_reconstructions(
    originals: np.ndarray,
    reconstructions: np.ndarray,
    geometry: ImageGeometry,
    path: Path,
    title: str,
) -> Path | None:
    """Draw held-out samples (top row) above their reconstructions (bottom row);
    None without matplotlib."""
    if not matplotlib_available():
        return None
    top = geometry.to_pixels(originals[:SHOWN])
    bottom = geometry.to_pixels(reconstructions[:SHOWN])
    figure = new_figure(1.0 + 0.7 * len(top), 2.2)
    ax = figure.add_subplot()
    _show(ax, mosaic(np.concatenate([top, bottom]), 2, len(top)))
    height = geometry.height + 1
    ax.set_yticks([(geometry.height - 1) / 2, height + (geometry.height - 1) / 2])
    ax.set_yticklabels(["input", "output"])
    ax.set_title(title, fontsize="medium")
    figure.tight_layout()
    return save_figure(figure, path)
