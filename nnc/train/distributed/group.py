"""The workers of one data-parallel run, as the training driver sees them.

Every worker runs the same driver on the same data with the same seed, so each draws
the same global batch order as single-process training (docs/semantics.md,
Training). A global batch ``index`` is split into ``size`` nearly equal contiguous
slices (``numpy.array_split``: sizes differ by at most one) and worker ``rank``
trains on slice ``rank``. Its loss weighs ``share`` in the global batch's loss: the
slice's fraction of the samples for a mean-reduced loss, 1 for a summed one (``sse``,
``reduction = sum``).
The global batch's loss is then ``Σ_r share_r · loss_r`` and, as the gradient is
linear in the loss, its gradient is ``Σ_r share_r · ∇loss_r``: the backends weigh
each worker's gradient by its share before summing (or averaging) them.

Collectives go through the runtime (``all_reduce``: a sum over the workers, in
float64), so the driver never imports a framework.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnc.backends.runtime import DataParallelRuntime
from nnc.errors import TrainingError


def shard(index: np.ndarray, rank: int, size: int) -> np.ndarray:
    """Worker ``rank``'s contiguous slice of ``index`` (of ``size`` nearly equal ones).

    >>> [shard(np.arange(5), r, 2).tolist() for r in range(2)]
    [[0, 1, 2], [3, 4]]
    """
    return np.array_split(index, size)[rank]


def share(part: int, whole: int, summed: bool) -> float:
    """The weight of a slice's loss in its global batch's loss.

    >>> share(3, 5, summed=False), share(3, 5, summed=True)
    (0.6, 1.0)
    """
    return 1.0 if summed else part / whole


def check_no_empty_slices(samples: int, batch: int, workers: int, backend: str) -> None:
    """Refuse a run in which some global batch has fewer samples than workers, for a
    backend that cannot train a worker on an empty slice."""
    sizes = {min(batch, samples)} | ({samples % batch} if samples % batch else set())
    smallest = min(sizes)
    if smallest >= workers:
        return
    which = (
        "every global batch has" if smallest == min(batch, samples) else "the last global batch has"
    )
    fits = [
        b for b in range(max(workers, 1), samples + 1) if samples % b == 0 or samples % b >= workers
    ]
    nearest = min(fits, key=lambda b: (abs(b - batch), b)) if fits else None
    raise TrainingError(
        f"{which} {smallest} sample{'s' * (smallest != 1)}, fewer than the {workers} workers, and "
        f"{backend} cannot train a worker on an empty slice (its convolutions fail on an empty "
        f"batch). Received: batch {batch} over {samples} training samples",
        hint=(f"use --batch {nearest}" if nearest else "use fewer workers")
        + " or --backend torch, which trains empty slices",
    )


@dataclass(frozen=True)
class DataParallel:
    """This worker's place among the workers, and their collectives."""

    runtime: DataParallelRuntime
    description: str = ""  # "DDP over gloo", "MultiWorkerMirroredStrategy", ...

    @property
    def rank(self) -> int:
        return int(self.runtime.rank)

    @property
    def size(self) -> int:
        return int(self.runtime.world_size)

    @property
    def chief(self) -> bool:
        """Rank 0 writes the run folder and reports progress; the others stay quiet."""
        return self.rank == 0

    def shard(self, index: np.ndarray) -> np.ndarray:
        return shard(index, self.rank, self.size)

    def sum(self, values: list[float] | np.ndarray) -> np.ndarray:
        """The element-wise sum over the workers (float64)."""
        vector = np.asarray(values, dtype=np.float64).reshape(-1)
        return np.asarray(self.runtime.all_reduce(vector), dtype=np.float64)

    def broadcast(self, payload: bytes | None) -> bytes:
        """Rank 0's bytes, on every worker (the others pass None).

        The bytes travel through ``all_reduce`` (the only collective the runtimes
        share): 6 bytes per float64, whose 48-bit integers are exact, while the other
        workers contribute zeros.
        """
        data = payload if self.chief and payload is not None else b""
        length = int(self.sum([len(data)])[0])
        padded = np.zeros(-(-length // 6) * 6, dtype=np.uint8)
        if self.chief:
            padded[:length] = np.frombuffer(data, dtype=np.uint8)
        digits = padded.reshape(-1, 6).astype(np.int64)
        packed = (digits << (8 * np.arange(6, dtype=np.int64))).sum(axis=1).astype(np.float64)
        total = self.sum(packed).astype(np.int64)
        unpacked = (total[:, None] >> (8 * np.arange(6, dtype=np.int64))) & 0xFF
        return unpacked.astype(np.uint8).reshape(-1)[:length].tobytes()
