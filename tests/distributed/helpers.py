"""Shared pieces of the multi-process tests: a spec with batchnorm and a summed loss,
weight comparisons, and finding the worker processes of a run."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

# A convolution, batchnorm over the global batch, and sse (a sum). 1,797 samples.
SMOOTHER = """
model Smoother {{
    input image: [1, 8, 8]
    conv2d(4, 3, padding = same)
    batchnorm
    relu
    conv2d(1, 3, padding = same)
}}

train Smoother {{
    data      digits, scale = unit
    target    input
    loss      sse
    optimizer sgd(lr = 0.000002, momentum = 0.9)
    epochs    2
    batch     {batch}
    seed      3
}}
"""


def deviations(
    a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], floor: float = 1e-3
) -> dict[str, float]:
    """Per tensor: max |a - b| relative to the tensor's scale (at least ``floor``, so
    that tensors near zero, like a bias ahead of batchnorm, compare absolutely)."""
    assert a.keys() == b.keys()
    return {
        k: float(np.max(np.abs(a[k] - b[k])) / max(floor, float(np.max(np.abs(b[k]))))) for k in a
    }


def absolute(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> float:
    """The largest difference of any weight."""
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


def check_smoother(gaps: dict[str, float]) -> None:
    """The batchnorm tensors match to 1e-4: per-replica statistics (half-batch means)
    would move the running statistics by about 1e-3 of their scale. The convolutions
    match to 1e-3: sse's gradient of a bias sums 14,400 float32 terms that nearly
    cancel."""
    batchnorm = {k: v for k, v in gaps.items() if k.startswith("batchnorm")}
    assert max(batchnorm.values()) < 1e-4, f"batchnorm, relative |2 workers - 1|: {gaps}"
    assert max(gaps.values()) < 1e-3, f"relative |2 workers - 1 process| per tensor: {gaps}"
    print("relative deviations per tensor:", {k: f"{v:.1e}" for k, v in gaps.items()})


def workers_of(launcher: int, count: int, deadline: float) -> dict[int, int]:
    """rank -> pid of the worker processes a launcher started (Linux: /proc)."""
    found: dict[int, int] = {}
    while len(found) < count and time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) != launcher:
                    continue
                rank = _rank(entry)
            except (OSError, ValueError):
                continue
            if rank is not None:
                found[rank] = int(entry.name)
        time.sleep(0.05)
    return found


def _rank(process: Path) -> int | None:
    for item in (process / "environ").read_bytes().split(b"\0"):
        if item.startswith(b"RANK="):
            return int(item[5:])
    words = (process / "cmdline").read_bytes().split(b"\0")
    return int(words[words.index(b"--rank") + 1]) if b"--rank" in words else None
