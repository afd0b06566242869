"""Tampering with weights files and checkpoints in tests: a file as one flat mapping
(tensors, and a checkpoint's metadata as ``meta/<key>`` arrays, as an ``.npz`` held
them), and back in the file's own format (by its suffix)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from nnc.ir.weights import read_tensor_file, save_npz, save_safetensors
from nnc.train.checkpoint import decode_metadata


def read_flat(path: Path) -> dict[str, np.ndarray]:
    found = read_tensor_file(path)
    meta = decode_metadata(found.metadata)
    return {**found.arrays, **{f"meta/{k}": v for k, v in meta.items()}}


def write_flat(path: Path, arrays: Mapping[str, object]) -> None:
    if path.suffix == ".npz":
        save_npz(path, {k: np.asarray(v) for k, v in arrays.items()})
        return
    tensors = {k: np.asarray(v) for k, v in arrays.items() if not k.startswith("meta/")}
    metadata = {
        k[5:]: str(np.asarray(v).item()) for k, v in arrays.items() if k.startswith("meta/")
    }
    save_safetensors(path, tensors, metadata)
