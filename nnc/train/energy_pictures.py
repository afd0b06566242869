"""Pictures of a trained RBM, drawn into the run folder at the end of a contrastive
divergence run: ``filters.png`` (each hidden unit's weights as an image) and
``samples.png`` (Gibbs chains from noise, :func:`nnc.train.energy.sample_chains`).

Only for image data; matplotlib is optional, as for ``loss.png``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from nnc.data.images import ImageGeometry
from nnc.train.energy import Arrays, sample_chains
from nnc.train.images import GRID, mosaic, save_sample_grid
from nnc.train.plot import matplotlib_available, new_figure, save_figure

FILTERS = "filters.png"
SAMPLES_PNG = "samples.png"
SAMPLE_STEPS = 1000  # Gibbs steps from noise to the pictured samples


def filter_pixels(weight: np.ndarray, geometry: ImageGeometry) -> np.ndarray:
    """Each hidden unit's weights ``weight[:, j]`` as an image ``[H, height, width]``,
    all on one scale: the smallest weight black, the largest white.

    >>> filter_pixels(np.array([[0.0, 2.0], [1.0, 4.0]]), ImageGeometry(1, 1, 2, 0, 1)).tolist()
    [[[0.0, 0.25]], [[0.5, 1.0]]]
    """
    w = np.asarray(weight, np.float64)
    spread = max(float(w.max() - w.min()), 1e-12)
    unit = ImageGeometry(geometry.channels, geometry.height, geometry.width, 0.0, 1.0)
    return unit.to_pixels(((w - w.min()) / spread).T)


def save_filters(
    weight: np.ndarray, geometry: ImageGeometry, path: Path, title: str
) -> Path | None:
    """Draw every hidden unit's filter in a square-ish grid; None without matplotlib."""
    if not matplotlib_available():
        return None
    pixels = filter_pixels(weight, geometry)
    cols = math.ceil(math.sqrt(len(pixels)))
    rows = math.ceil(len(pixels) / cols)
    figure = new_figure(4.4, 4.4 * rows / cols + 0.4)
    ax = figure.add_subplot()
    ax.imshow(mosaic(pixels, rows, cols), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize="medium")
    figure.tight_layout()
    return save_figure(figure, path)


def save_rbm_pictures(
    w: Arrays,
    geometry: ImageGeometry,
    folder: Path,
    title: str,
    seed: int,
    kind: str = "bernoulli",
) -> list[Path]:
    """``filters.png`` and ``samples.png`` (64 chains from noise, :data:`SAMPLE_STEPS`
    steps, the last ``E[v | h]``; Gaussian visible units' standardised means on one
    grey scale from the smallest to the largest) in ``folder``; nothing without
    matplotlib."""
    drawn = [save_filters(w["weight"], geometry, folder / FILTERS, f"{title}: filters")]
    samples = sample_chains(w, GRID * GRID, SAMPLE_STEPS, seed, kind)
    if kind == "gaussian":
        samples = (samples - samples.min()) / max(float(np.ptp(samples)), 1e-12)
    unit = ImageGeometry(geometry.channels, geometry.height, geometry.width, 0.0, 1.0)
    drawn.append(
        save_sample_grid(
            samples, unit, folder / SAMPLES_PNG, f"{title}: samples ({SAMPLE_STEPS} Gibbs steps)"
        )
    )
    return [p for p in drawn if p is not None]
