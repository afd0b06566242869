"""Canonical weights: a mapping from parameter name to a NumPy array.

Initial weights are drawn here, in NumPy, once: each parameter from its own
generator seeded with ``(seed, crc32(name))``, so adding a layer never changes the
initial values of the others. Every backend loads these arrays, which is why
training starts from identical numbers everywhere.

Files are ``.npz`` archives read with ``allow_pickle=False``.

>>> import nnc
>>> w = init_weights(nnc.load("examples/xor.nn"), "Xor", seed=7)
>>> sorted(w), w["dense_1.weight"].shape, w["dense_1.weight"].dtype
(['dense_1.bias', 'dense_1.weight', 'dense_2.bias', 'dense_2.weight'], (5, 2), dtype('float32'))
"""

from __future__ import annotations

import io
import math
import os
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from nnc.errors import NncError, ResourceError, WeightsError
from nnc.ir.passes.params import Param, model_params
from nnc.ir.program import Model, Program

Weights = dict[str, np.ndarray]


def param_seed(seed: int, name: str) -> list[int]:
    """The entropy that seeds one parameter's generator."""
    return [seed & 0xFFFFFFFF, zlib.crc32(name.encode("utf-8"))]


def init_weights(program: Program, model: Model | str, seed: int = 0) -> Weights:
    """Initial canonical weights (float32) of a checked model."""
    out: Weights = {}
    for p in model_params(program, model):
        rng = np.random.default_rng(param_seed(seed, p.name))
        value = p.spec.init.sample(p.spec.shape, p.spec.fan_in, p.spec.fan_out, rng)
        out[p.name] = np.asarray(value, dtype=np.float32).reshape(p.spec.shape)
    return out


def check_weights(
    program: Program, model: Model | str, weights: Mapping[str, np.ndarray], source: str = "weights"
) -> Weights:
    """Verify names, shapes, dtypes and finiteness against the model; return float32 copies."""
    params: dict[str, Param] = {p.name: p for p in model_params(program, model)}
    missing = [n for n in params if n not in weights]
    extra = [n for n in weights if n not in params]
    if missing:
        raise WeightsError(
            f"{source} is missing tensor(s) {', '.join(missing[:5])}"
            + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        )
    if extra:
        raise WeightsError(
            f"{source} has tensor(s) the model does not: {', '.join(extra[:5])}"
            + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        )
    out: Weights = {}
    for name, p in params.items():
        arr = np.asarray(weights[name])
        if arr.shape != p.spec.shape:
            raise WeightsError(
                f"{source}: tensor '{name}' has shape {list(arr.shape)}; the model expects "
                f"{list(p.spec.shape)}"
            )
        if not np.issubdtype(arr.dtype, np.floating):
            raise WeightsError(
                f"{source}: tensor '{name}' has dtype {arr.dtype}; expected a float type"
            )
        if not np.all(np.isfinite(arr)):
            raise WeightsError(f"{source}: tensor '{name}' holds NaN or infinite values")
        out[name] = arr.astype(np.float32, copy=True)
    return out


def save_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write arrays atomically: a temporary file in the same folder, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as archive:
                for name, value in arrays.items():
                    buffer = io.BytesIO()
                    np.lib.format.write_array(buffer, np.asarray(value), allow_pickle=False)
                    archive.writestr(f"{name}.npy", buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Read an ``.npz`` without pickle; a missing, truncated or corrupt file is a
    :class:`WeightsError` naming it, and one that declares more data than it holds or
    than the memory budget allows is refused before anything is allocated."""
    path = Path(path)
    try:
        # Open the file here: np.load leaks its own handle when the archive is corrupt.
        with open(path, "rb") as f:
            if not zipfile.is_zipfile(f):
                raise WeightsError(f"{path} is not a readable .npz archive (not a zip file)")
            f.seek(0)
            with zipfile.ZipFile(f) as archive:
                check_npz_sizes(archive, path, WeightsError)
            f.seek(0)
            with np.load(f, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise WeightsError(f"no such weights file: {path}") from None
    except MemoryError:
        raise WeightsError(f"{path} does not fit in memory") from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise WeightsError(f"{path} is not a readable .npz archive ({exc})") from None


def check_npz_sizes(archive: zipfile.ZipFile, path: Path, error: type[NncError]) -> None:
    """Read only the headers of an archive's arrays and refuse, as ``error``, one whose
    shape needs more bytes than it stores (a forged header would make NumPy allocate
    the declared size first), one holding Python objects, or an archive whose arrays
    add up to more than the memory budget (a small compressed file can expand to
    gigabytes)."""
    from nnc.ir.passes.resources import memory_budget

    total = 0
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            continue
        name = info.filename[: -len(".npy")]
        with archive.open(info) as member:
            try:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                else:
                    raise ValueError(f"unsupported .npy format version {version}")
            except (ValueError, EOFError) as exc:
                raise error(f"{path}: array '{name}' has a damaged header ({exc})") from None
            stored = info.file_size - member.tell()
        if dtype.hasobject:
            raise error(
                f"{path} is not a readable .npz archive: array '{name}' holds Python objects; "
                "nnc reads plain numeric arrays only (it never unpickles)"
            )
        needed = math.prod(int(d) for d in shape) * dtype.itemsize
        if needed > stored:
            raise error(
                f"{path}: array '{name}' declares shape {list(shape)} ({needed:,} bytes) but "
                f"stores {stored:,} bytes; the file is damaged"
            )
        total += needed
    budget = memory_budget()
    if total > budget:
        raise ResourceError(
            f"{path} holds {total:,} bytes of arrays, more than the memory budget of "
            f"{budget:,} bytes (NNC_MEMORY_BUDGET)"
        )


# A training checkpoint is an .npz whose canonical weights are stored under this
# prefix (``weights/dense_1.weight``), beside ``optimizer/...`` and ``meta/...`` entries.
CHECKPOINT_WEIGHTS_PREFIX = "weights/"


def read_weights_file(path: str | Path) -> dict[str, np.ndarray]:
    """Canonical weights from a plain weights ``.npz`` or from a training checkpoint."""
    arrays = load_npz(path)
    if any(k.startswith(CHECKPOINT_WEIGHTS_PREFIX) for k in arrays):
        n = len(CHECKPOINT_WEIGHTS_PREFIX)
        return {k[n:]: v for k, v in arrays.items() if k.startswith(CHECKPOINT_WEIGHTS_PREFIX)}
    return arrays


def load_weights(path: str | Path, program: Program, model: Model | str) -> Weights:
    """Load and verify canonical weights for ``model`` from a weights file or checkpoint."""
    return check_weights(program, model, read_weights_file(path), source=str(path))
