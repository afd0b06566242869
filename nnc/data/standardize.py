"""Standardisation: zero mean and unit variance per input feature.

Statistics come from the training split only; a feature whose deviation is zero
keeps a deviation of 1 (it is only centred). For inputs with a symbolic dim (a
sequence ``[t, features]``), the statistics are shared along that dim, so they
apply to sequences of any length.

>>> import numpy as np
>>> from nnc.ir.types import TensorType
>>> s = Standardizer.fit(np.array([[1.0, 5.0], [3.0, 5.0]]), TensorType(shape=(2,)))
>>> s.mean.tolist(), s.std.tolist(), s.apply(np.array([[3.0, 6.0]])).tolist()
([[2.0, 5.0]], [[1.0, 1.0]], [[1.0, 1.0]])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnc.errors import DataError, WeightsError
from nnc.ir.types import TensorType
from nnc.ir.weights import load_npz, save_npz

FILENAME = "standardize.npz"


@dataclass(frozen=True)
class Standardizer:
    """``(x - mean) / std`` with ``mean`` and ``std`` shaped ``[1, *sample]``."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, input_type: TensorType) -> Standardizer:
        """Statistics over the samples (and any symbolic dims) of ``x``."""
        axes = (0, *(1 + i for i, d in enumerate(input_type.shape) if isinstance(d, str)))
        data = x.astype(np.float64)
        mean = data.mean(axis=axes, keepdims=True)
        std = data.std(axis=axes, keepdims=True)
        std[std == 0] = 1.0
        return cls(mean=mean.astype(np.float32), std=std.astype(np.float32))

    def apply(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != self.mean.ndim or any(
            m != 1 and m != d for m, d in zip(self.mean.shape[1:], x.shape[1:], strict=True)
        ):
            raise DataError(
                f"standardisation statistics of shape {list(self.mean.shape[1:])} do not fit "
                f"samples of shape {list(x.shape[1:])}"
            )
        return ((x - self.mean) / self.std).astype(np.float32)

    def arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        return {f"{prefix}mean": self.mean, f"{prefix}std": self.std}

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], prefix: str = "", source: str = "statistics"
    ) -> Standardizer | None:
        """The statistics stored under ``prefix`` in ``arrays``, or None if absent."""
        if f"{prefix}mean" not in arrays:
            return None
        mean, std = arrays[f"{prefix}mean"], arrays.get(f"{prefix}std")
        if (
            std is None
            or mean.shape != std.shape
            or not (np.all(std > 0) and np.all(np.isfinite(mean)))
        ):
            raise WeightsError(f"{source}: the standardisation statistics are damaged")
        return cls(mean=mean.astype(np.float32), std=std.astype(np.float32))

    def save(self, path: str | Path) -> Path:
        return save_npz(path, self.arrays())

    @classmethod
    def load(cls, path: str | Path) -> Standardizer:
        found = cls.from_arrays(load_npz(path), source=str(path))
        if found is None:
            raise WeightsError(f"{path} holds no standardisation statistics ('mean', 'std')")
        return found
