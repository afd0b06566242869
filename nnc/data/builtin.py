"""The built-in data sets: two shipped with nnc, the others generated from the seed.

``digits`` and ``iris`` are read from ``.npz`` files inside the package (see
``nnc/data/README.md`` for their provenance and licences); nothing is downloaded.
The others are drawn from ``numpy.random.default_rng([seed, crc32("data:<name>")])``
so a recipe's seed fixes its data, and each set has its own stream. Shapes and class
counts are those of :data:`nnc.ir.datasets.CATALOG`, which a test holds them to.

>>> s = load_builtin("xor")
>>> s.x.tolist(), s.y[:, 0].tolist()
([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], [0.0, 1.0, 1.0, 0.0])
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nnc.data.samples import Samples
from nnc.errors import DataError, did_you_mean
from nnc.ir.datasets import CATALOG

PACKAGE_DIR = Path(__file__).resolve().parent

Arrays = tuple[np.ndarray, np.ndarray]
Generate = Callable[[np.random.Generator], Arrays]


def data_rng(seed: int, name: str) -> np.random.Generator:
    """The generator that draws data set ``name`` for a recipe's ``seed``."""
    return np.random.default_rng([seed, zlib.crc32(f"data:{name}".encode())])


def load_builtin(name: str, seed: int = 0) -> Samples:
    """The raw samples of a built-in data set (features as stored, no scaling)."""
    if name not in CATALOG:
        raise DataError(
            f"unknown dataset '{name}'. Available: {', '.join(sorted(CATALOG))}",
            hint=did_you_mean(name, CATALOG),
        )
    info = CATALOG[name]
    if name in _SHIPPED:
        x, y = _read_shipped(name)
    else:
        x, y = _GENERATORS[name](data_rng(seed, name))
    return Samples(x=x, y=y, source=f"dataset '{name}'", classes=info.classes)


# -- shipped -----------------------------------------------------------------------

_SHIPPED = ("digits", "iris")


def _read_shipped(name: str) -> Arrays:
    path = PACKAGE_DIR / f"{name}.npz"
    try:
        with np.load(path, allow_pickle=False) as archive:
            return archive["x"].astype(np.float32), archive["y"].astype(np.int64)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"the packaged data file {path} is missing or damaged ({exc})",
            hint="reinstall nnc",
        ) from None


# -- generated ---------------------------------------------------------------------

_TRUTH_INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)


def _truth_table(rule: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Generate:
    def make(rng: np.random.Generator) -> Arrays:
        a, b = _TRUTH_INPUTS[:, 0] > 0, _TRUTH_INPUTS[:, 1] > 0
        return _TRUTH_INPUTS.copy(), rule(a, b).astype(np.float32)[:, None]

    return make


def _spirals(rng: np.random.Generator) -> Arrays:
    """Three arms, 300 points each, from the centre outwards; the angle is jittered."""
    per_class, classes = 300, 3
    radius = np.linspace(0.0, 1.0, per_class)
    xs, ys = [], []
    for k in range(classes):
        angle = 2 * np.pi * k / classes + 4.0 * radius + rng.normal(0.0, 0.2, per_class)
        xs.append(np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1))
        ys.append(np.full(per_class, k, dtype=np.int64))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)


def _houses(rng: np.random.Generator) -> Arrays:
    """500 houses: size (m²), rooms, age (years), distance to the centre (km), floor,
    garden (0/1). The price ($1000s) is size times a price per m² that falls with age
    and distance and rises with the floor and a garden, plus rooms and noise."""
    n = 500
    size = rng.uniform(40.0, 250.0, n)
    rooms = np.clip(np.round(size / 35.0 + rng.normal(0.0, 0.8, n)), 1, 8)
    age = rng.uniform(0.0, 80.0, n)
    distance = rng.gamma(2.0, 4.0, n)
    floor = rng.integers(0, 11, n).astype(np.float64)
    garden = (rng.random(n) < 0.4).astype(np.float64)
    per_m2 = (
        3.0 * (1 - 0.004 * age) * np.exp(-0.03 * distance) * (1 + 0.02 * floor) * (1 + 0.1 * garden)
    )
    price = np.maximum(size * per_m2 + 5.0 * rooms + rng.normal(0.0, 15.0, n), 20.0)
    x = np.stack([size, rooms, age, distance, floor, garden], axis=1)
    return x.astype(np.float32), price.astype(np.float32)[:, None]


def _sine(rng: np.random.Generator) -> Arrays:
    """1,000 windows of ``sin(ωt + φ) + N(0, 0.05²)``, ω ~ U(0.1, 0.25) rad per step;
    the target is step 21. Repeating the last value scores about 0.02 MSE."""
    n, steps = 1000, 20
    omega = rng.uniform(0.1, 0.25, (n, 1))
    phase = rng.uniform(0.0, 2 * np.pi, (n, 1))
    t = np.arange(steps + 1)[None, :]
    wave = np.sin(omega * t + phase) + rng.normal(0.0, 0.05, (n, steps + 1))
    return wave[:, :steps, None].astype(np.float32), wave[:, steps:].astype(np.float32)


def _waves(rng: np.random.Generator) -> Arrays:
    """600 waves of 24 steps, classes 0 sine, 1 square, 2 sawtooth in turn; the period
    is 6 to 16 steps, the phase uniform, and noise N(0, 0.1²) is added."""
    n, steps = 600, 24
    label = np.arange(n, dtype=np.int64) % 3
    period = rng.uniform(6.0, 16.0, (n, 1))
    phase = rng.uniform(0.0, 1.0, (n, 1))
    u = (np.arange(steps)[None, :] / period + phase) % 1.0
    shapes = np.stack([np.sin(2 * np.pi * u), np.where(u < 0.5, 1.0, -1.0), 2.0 * u - 1.0])
    wave = shapes[label, np.arange(n)] + rng.normal(0.0, 0.1, (n, steps))
    return wave[:, :, None].astype(np.float32), label


def _wave_steps(rng: np.random.Generator) -> Arrays:
    """The waves of ``_waves`` with one label per step, the wave's shape: a target for
    an output at every step, y_t = softmax(V h_t), read from the steps seen so far."""
    wave, label = _waves(rng)
    return wave, np.repeat(label[:, None], wave.shape[1], axis=1)


def _blobs(rng: np.random.Generator) -> Arrays:
    """600 segmentation samples of 16x16: one to three discs (radius 2 to 4) or boxes
    (side 3 to 7) of brightness U(0.5, 1) over a background ramp of slope up to 0.6
    across the image, plus N(0, 0.3²) noise. The target is 1 on a shape's pixels and
    0 elsewhere, so a threshold on brightness alone mislabels the bright end of the ramp."""
    n, size = 600, 16
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    x = np.empty((n, 1, size, size))
    mask = np.zeros((n, 1, size, size))
    for i in range(n):
        angle = rng.uniform(0.0, 2 * np.pi)
        ramp = rng.uniform(0.0, 0.6) * (np.cos(angle) * cols + np.sin(angle) * rows) / size
        image = ramp - ramp.min()
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.uniform(2.0, size - 2.0, 2)
            if rng.random() < 0.5:
                shape = (rows - cy) ** 2 + (cols - cx) ** 2 <= rng.uniform(2.0, 4.0) ** 2
            else:
                h, w = rng.uniform(1.5, 3.5, 2)
                shape = (np.abs(rows - cy) <= h) & (np.abs(cols - cx) <= w)
            image = np.where(shape, rng.uniform(0.5, 1.0), image)
            mask[i, 0] = np.maximum(mask[i, 0], shape)
        x[i, 0] = image + rng.normal(0.0, 0.3, (size, size))
    return x.astype(np.float32), mask.astype(np.float32)


def _volumes(rng: np.random.Generator) -> Arrays:
    """400 volumes [1, 8, 8, 8], classes 0 and 1 in turn: 0 holds a solid 3x3x3 cube,
    1 a 3-D cross (three orthogonal bars of 5 voxels through one centre), each of
    value 1 at a random place inside the volume, in noise N(0, 0.3²)."""
    n, side = 400, 8
    label = np.arange(n, dtype=np.int64) % 2
    volume = rng.normal(0.0, 0.3, (n, 1, side, side, side))
    centre = rng.integers(2, side - 2, (n, 3))
    offsets = np.arange(-1, 2)
    cube = np.stack(np.meshgrid(offsets, offsets, offsets, indexing="ij"), -1).reshape(-1, 3)
    bars = np.arange(-2, 3)
    zeros = np.zeros_like(bars)
    cross = np.unique(
        np.concatenate(
            [
                np.stack(a, -1)
                for a in ((bars, zeros, zeros), (zeros, bars, zeros), (zeros, zeros, bars))
            ]
        ),
        axis=0,
    )
    for k in range(n):
        d, h, w = (centre[k] + (cross if label[k] else cube)).T
        volume[k, 0, d, h, w] += 1.0
    return volume.astype(np.float32), label


def _reverse(rng: np.random.Generator) -> Arrays:
    """2,000 token sequences [8] to reverse: 5 to 8 tokens drawn from 1..9, padded at
    the start with the padding token 0 to length 8. The target is the reversed
    sequence, so its padding (label 0) comes at the end: train it with
    ``cross_entropy(ignore = 0)``."""
    n, length = 2000, 8
    x = rng.integers(1, 10, (n, length))
    sizes = rng.integers(5, length + 1, n)
    x[np.arange(length)[None, :] < (length - sizes)[:, None]] = 0
    return x.astype(np.float32), x[:, ::-1].astype(np.int64)


_GENERATORS: dict[str, Generate] = {
    "xor": _truth_table(np.logical_xor),
    "and": _truth_table(np.logical_and),
    "or": _truth_table(np.logical_or),
    "spirals": _spirals,
    "houses": _houses,
    "sine": _sine,
    "waves": _waves,
    "wave_steps": _wave_steps,
    "blobs": _blobs,
    "volumes": _volumes,
    "reverse": _reverse,
}
