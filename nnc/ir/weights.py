"""Canonical weights: a mapping from parameter name to a NumPy array.

Initial weights are drawn here, in NumPy, once: each parameter from its own
generator seeded with ``(seed, crc32(name))``, so adding a layer never changes the
initial values of the others. Every backend loads these arrays, which is why
training starts from identical numbers everywhere.

nnc writes weights files and checkpoints in the safetensors format (a length, a JSON
header naming each tensor's dtype, shape and byte range, then the raw bytes; no
pickle), and still reads the ``.npz`` archives it wrote before (with
``allow_pickle=False``). Both are read bounded: the file must be a regular file, its
header must be small and agree with the bytes it stores, and its arrays must fit the
memory budget, before anything is allocated.

>>> import nnc
>>> w = init_weights(nnc.load("examples/xor.nn"), "Xor", seed=7)
>>> sorted(w), w["dense_1.weight"].shape, w["dense_1.weight"].dtype
(['dense_1.bias', 'dense_1.weight', 'dense_2.bias', 'dense_2.weight'], (5, 2), dtype('float32'))
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from nnc.errors import NncError, ResourceError, WeightsError
from nnc.ir.ops.graph import Call
from nnc.ir.passes.params import Param, model_params
from nnc.ir.program import Model, Program
from nnc.ir.training import GanRecipe
from nnc.ir.types import FLOAT32_MAX
from nnc.userfiles import open_regular

Weights = dict[str, np.ndarray]


def param_seed(seed: int, name: str) -> list[int]:
    """The entropy that seeds one parameter's generator."""
    return [seed & 0xFFFFFFFF, zlib.crc32(name.encode("utf-8"))]


def init_weights(program: Program, model: Model | str, seed: int = 0, prefix: str = "") -> Weights:
    """Initial canonical weights (float32) of a checked model.

    ``prefix`` goes in front of every name, and the names with it seed the draws:
    a GAN's ``generator/dense_1.weight`` is drawn apart from its discriminator's
    ``discriminator/dense_1.weight``.
    """
    out: Weights = {}
    for p in model_params(program, model):
        name = prefix + p.name
        rng = np.random.default_rng(param_seed(seed, name))
        out[name] = p.spec.init.draw(p.spec.shape, p.spec.fan_in, p.spec.fan_out, rng)
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
        largest = float(np.max(np.abs(arr))) if arr.size else 0.0
        if largest > FLOAT32_MAX:
            raise WeightsError(
                f"{source}: tensor '{name}' holds {largest:.6g}, which does not fit float32 "
                f"(largest finite value {FLOAT32_MAX:.8g}); nnc runs every model in float32"
            )
        out[name] = arr.astype(np.float32, copy=True)
    return out


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write a file atomically: ``write`` fills a temporary file in the same folder,
    which is synced and renamed over ``path``; on any failure the old file stays."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write arrays as an ``.npz`` atomically (predictions, ONNX outputs, statistics;
    weights and checkpoints are safetensors: :func:`save_safetensors`)."""

    def write(f: BinaryIO) -> None:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, value in arrays.items():
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, np.asarray(value), allow_pickle=False)
                archive.writestr(f"{name}.npy", buffer.getvalue())

    return atomic_write(path, write)


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Read an ``.npz`` without pickle; a missing, truncated or corrupt file is a
    :class:`WeightsError` naming it, and one that declares more data than it holds or
    than the memory budget allows is refused before anything is allocated."""
    path = Path(path)
    try:
        # Open the file here: np.load leaks its own handle when the archive is corrupt.
        with open_regular(path, WeightsError, "no such weights file") as f:
            return _read_npz(f, path)
    except FileNotFoundError:
        raise WeightsError(f"no such weights file: {path}") from None


def _read_npz(f: BinaryIO, path: Path) -> dict[str, np.ndarray]:
    try:
        if not zipfile.is_zipfile(f):
            raise WeightsError(f"{path} is not a readable .npz archive (not a zip file)")
        f.seek(0)
        with zipfile.ZipFile(f) as archive:
            check_npz_sizes(archive, path, WeightsError)
        f.seek(0)
        with np.load(f, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except MemoryError:
        raise WeightsError(f"{path} does not fit in memory") from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise WeightsError(f"{path} is not a readable .npz archive ({exc})") from None


# -- safetensors -------------------------------------------------------------------------

SAFETENSORS = ".safetensors"
# The longest header nnc reads. A header is about 100 bytes a tensor plus the
# metadata (a checkpoint's resolved recipe: a few kilobytes), so 16 MiB is far more
# than any nnc file needs; the safetensors library itself allows 100 MB.
MAX_HEADER = 16 * 1024 * 1024
# The safetensors dtypes nnc reads (those NumPy has). BF16 and the F8 types have no
# NumPy dtype: such a file is refused, naming the tensor.
SAFETENSORS_DTYPES: dict[str, np.dtype] = {
    name: np.dtype(kind).newbyteorder("<")
    for name, kind in {
        "F16": np.float16,
        "F32": np.float32,
        "F64": np.float64,
        "I8": np.int8,
        "I16": np.int16,
        "I32": np.int32,
        "I64": np.int64,
        "U8": np.uint8,
        "U16": np.uint16,
        "U32": np.uint32,
        "U64": np.uint64,
        "BOOL": np.bool_,
    }.items()
}


@dataclass(frozen=True)
class TensorFile:
    """What a weights file or checkpoint holds: its arrays, and its text metadata (a
    safetensors file's ``__metadata__``; an ``.npz`` has none: a checkpoint of that
    format keeps its metadata as ``meta/...`` arrays)."""

    arrays: dict[str, np.ndarray]
    metadata: dict[str, str]
    format: str  # "safetensors" or "npz"


def save_safetensors(
    path: str | Path, arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None
) -> Path:
    """Write arrays (little-endian, C order, keys as given) and string metadata as a
    safetensors file, atomically (temporary file, fsync, rename)."""
    from safetensors.numpy import save

    tensors = {k: np.asarray(v, order="C") for k, v in arrays.items()}
    for name, value in tensors.items():
        if value.dtype.newbyteorder("<") not in SAFETENSORS_DTYPES.values():
            raise WeightsError(f"cannot write tensor '{name}' of dtype {value.dtype} to {path}")
    data = save(tensors, metadata=dict(metadata) if metadata else None)

    def write(f: BinaryIO) -> None:
        f.write(data)

    return atomic_write(path, write)


def save_weights_file(
    path: str | Path, weights: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None
) -> Path:
    """Write canonical weights (under their canonical names) as a safetensors file. A
    name ending ``.npz`` is refused: nnc reads that format but no longer writes it, and
    a safetensors file under that name would not be read back."""
    return save_safetensors(weights_output(path), weights, metadata)


def weights_output(path: str | Path) -> Path:
    """``path`` as the name of a weights file to write, refused when it ends ``.npz``."""
    path = Path(path)
    if path.suffix.lower() == ".npz":
        raise WeightsError(
            f"{path}: nnc writes weights as safetensors, not .npz",
            hint=f"name the file {path.with_suffix(SAFETENSORS).name}",
        )
    return path


def read_tensor_file(path: str | Path) -> TensorFile:
    """A weights file or checkpoint in either format: an ``.npz`` (by its suffix or
    its zip signature) as nnc wrote before, else safetensors. Nothing is unpickled; a
    file that is not regular, damaged, or larger than the memory budget is refused
    (:class:`WeightsError`, :class:`ResourceError`) before its arrays are allocated."""
    path = Path(path)
    with open_regular(path, WeightsError, "no such weights file") as f:
        if path.suffix.lower() == ".npz" or f.read(4) == b"PK\x03\x04":
            f.seek(0)
            return TensorFile(_read_npz(f, path), {}, "npz")
        f.seek(0)
        size = os.fstat(f.fileno()).st_size
        _within_budget(size, path)
        try:
            data = f.read(size + 1)
        except OSError as exc:
            raise WeightsError(f"cannot read {path}: {exc.strerror}") from None
    return safetensors_from_bytes(data, path)


def safetensors_from_bytes(data: bytes, path: str | Path) -> TensorFile:
    """Parse the bytes of a safetensors file, checking its header before decoding: a
    length that is too large or past the end, a header that is not the format's JSON,
    a dtype nnc does not read, or a tensor whose shape does not fit its bytes is a
    :class:`WeightsError` naming the file (and the tensor)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    path = Path(path)
    if len(data) < 8:
        raise WeightsError(
            f"{path} is not a readable safetensors file: it holds {len(data)} bytes, less "
            "than the 8-byte length its header starts with"
        )
    size = int.from_bytes(data[:8], "little")
    if size > MAX_HEADER:
        raise WeightsError(
            f"{path} is not a readable safetensors file: its header declares {size:,} bytes, "
            f"more than the {MAX_HEADER:,} nnc reads"
        )
    body = len(data) - 8 - size
    if body < 0:
        raise WeightsError(
            f"{path} is not a readable safetensors file: its header declares {size:,} bytes "
            f"but only {len(data) - 8:,} follow; the file is truncated"
        )
    try:
        header = json.loads(data[8 : 8 + size].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise WeightsError(
            f"{path} is not a readable safetensors file: its header is not JSON ({exc})"
        ) from None
    metadata = _check_header(header, body, path)
    try:
        arrays = load(data)
    except SafetensorError as exc:
        raise WeightsError(f"{path} is not a readable safetensors file ({exc})") from None
    except MemoryError:
        raise WeightsError(f"{path} does not fit in memory") from None
    return TensorFile(arrays, metadata, "safetensors")


def _check_header(header: object, body: int, path: Path) -> dict[str, str]:
    """The metadata of a safetensors header, once every tensor's entry is checked
    against the ``body`` bytes that follow it."""
    damaged = f"{path} is not a readable safetensors file"
    if not isinstance(header, dict):
        raise WeightsError(f"{damaged}: its header is not a JSON object")
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise WeightsError(f"{damaged}: its __metadata__ is not a mapping of strings to strings")
    total = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise WeightsError(
                f"{damaged}: the entry of tensor '{name}' is not {{{{dtype, shape, data_offsets}}}}"
            )
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in SAFETENSORS_DTYPES:
            raise WeightsError(
                f"{path}: tensor '{name}' has dtype {dtype!r}, which nnc does not read "
                f"(it reads {', '.join(SAFETENSORS_DTYPES)})"
            )
        if not (
            isinstance(shape, list)
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        ):
            raise WeightsError(f"{path}: tensor '{name}' has a damaged shape {shape!r}")
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            and 0 <= offsets[0] <= offsets[1] <= body
        ):
            raise WeightsError(
                f"{path}: tensor '{name}' has byte range {offsets!r}, outside the "
                f"{body:,} bytes the file stores; the file is damaged"
            )
        needed = math.prod(shape) * SAFETENSORS_DTYPES[dtype].itemsize
        stored = offsets[1] - offsets[0]
        if needed != stored:
            raise WeightsError(
                f"{path}: tensor '{name}' declares shape {shape} ({needed:,} bytes) but "
                f"stores {stored:,} bytes; the file is damaged"
            )
        total += needed
    _within_budget(total, path)
    return dict(metadata)


def _within_budget(size: int, path: Path) -> None:
    from nnc.ir.passes.resources import memory_budget

    budget = memory_budget()
    if size > budget:
        raise ResourceError(
            f"{path} holds {size:,} bytes of arrays, more than the memory budget of "
            f"{budget:,} bytes (NNC_MEMORY_BUDGET)"
        )


def check_npz_sizes(archive: zipfile.ZipFile, path: Path, error: type[NncError]) -> None:
    """Read only the headers of an archive's arrays and refuse, as ``error``, one whose
    shape needs more bytes than it stores (a forged header would make NumPy allocate
    the declared size first), one holding Python objects, or an archive whose arrays
    add up to more than the memory budget (a small compressed file can expand to
    gigabytes)."""
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
    _within_budget(total, path)


# A training checkpoint stores its canonical weights under this prefix
# (``weights/dense_1.weight``), beside ``optimizer/...`` (and, in an old ``.npz``,
# ``meta/...``) entries. A plain weights file uses the canonical names themselves.
CHECKPOINT_WEIGHTS_PREFIX = "weights/"


def read_weights_file(path: str | Path) -> dict[str, np.ndarray]:
    """Canonical weights from a weights file or a training checkpoint, safetensors or
    ``.npz``."""
    arrays = read_tensor_file(path).arrays
    if any(k.startswith(CHECKPOINT_WEIGHTS_PREFIX) for k in arrays):
        n = len(CHECKPOINT_WEIGHTS_PREFIX)
        return {k[n:]: v for k, v in arrays.items() if k.startswith(CHECKPOINT_WEIGHTS_PREFIX)}
    return arrays


def load_weights(path: str | Path, program: Program, model: Model | str) -> Weights:
    """Load and verify canonical weights for ``model`` from a weights file or checkpoint
    (its own, or those of a model or GAN it is part of: see :func:`find_model_weights`)."""
    found = find_model_weights(program, model, read_weights_file(path), str(path))
    return check_weights(program, model, found.weights, source=str(path))


# -- a GAN's weights, and a model's weights inside another's ------------------------------

# A GAN's canonical weights (and optimizer state) hold both models' tensors in one
# mapping, each under its role: ``generator/dense_1.weight``,
# ``discriminator/dense_1.weight``. The part after the slash is the model's own
# canonical name, so either model's weights can be taken out whole.
GAN_ROLES = ("generator", "discriminator")
ROLE_SEPARATOR = "/"


def gan_models(recipe: GanRecipe) -> dict[str, str]:
    """Role -> model name: ``{"generator": "Generator", "discriminator": ...}``."""
    return {"generator": recipe.generator, "discriminator": recipe.discriminator}


def init_gan_weights(program: Program, recipe: GanRecipe, seed: int | None = None) -> Weights:
    """Initial canonical weights of both models of a GAN recipe, under their roles
    (each tensor drawn with its full name: ``generator/dense_1.weight``).

    >>> import nnc
    >>> program = nnc.load("examples/gan.nn")
    >>> w = init_gan_weights(program, program.recipes["DigitsGAN"])
    >>> [name for name in w if name.endswith("dense_1.weight")]
    ['generator/dense_1.weight', 'discriminator/dense_1.weight']
    """
    chosen = recipe.seed if seed is None else seed
    out: Weights = {}
    for role, model in gan_models(recipe).items():
        out.update(init_weights(program, model, chosen, prefix=role + ROLE_SEPARATOR))
    return out


def split_roles(arrays: Mapping[str, np.ndarray], source: str = "weights") -> dict[str, Weights]:
    """``{"generator": {...}, "discriminator": {...}}`` from ``role/name`` keys; a key
    without one of the two roles is a :class:`WeightsError`."""
    parts: dict[str, Weights] = {role: {} for role in GAN_ROLES}
    for key, value in arrays.items():
        role, separator, name = key.partition(ROLE_SEPARATOR)
        if not separator or role not in parts:
            raise WeightsError(
                f"{source}: tensor '{key}' does not belong to a GAN model; expected names "
                f"'generator/<param>' or 'discriminator/<param>'"
            )
        parts[role][name] = value
    return parts


def check_gan_weights(
    program: Program, recipe: GanRecipe, weights: Mapping[str, np.ndarray], source: str = "weights"
) -> Weights:
    """Verify a GAN's weights (both models, under their roles); return float32 copies."""
    parts = split_roles(weights, source)
    out: Weights = {}
    for role, model in gan_models(recipe).items():
        checked = check_weights(program, model, parts[role], f"{source} ({role} {model})")
        out.update({f"{role}{ROLE_SEPARATOR}{k}": v for k, v in checked.items()})
    return out


@dataclass(frozen=True)
class Found:
    """A model's weights found in a larger set: under their own names, and where they
    were (``prefix``: ``""``, a call's ``encoder_1.`` or a GAN role's ``generator/``;
    ``root``: the model whose weights held them)."""

    weights: Weights
    prefix: str
    root: str


def call_prefixes(program: Program, root: str, target: str, prefix: str = "") -> list[str]:
    """The name prefix of every use of ``target`` inside ``root`` (``""`` for itself).

    >>> import nnc
    >>> call_prefixes(nnc.load("examples/autoencoder.nn"), "Autoencoder", "Encoder")
    ['encoder_1.']
    """
    found = [prefix] if root == target else []
    for node in program.models[root].nodes:
        if isinstance(node, Call):
            found += call_prefixes(program, node.model, target, f"{prefix}{node.name}.")
    return found


def find_model_weights(
    program: Program, model: Model | str, weights: Mapping[str, np.ndarray], source: str = "weights"
) -> Found:
    """The canonical weights of ``model`` inside ``weights``: its own, or those of a use
    of it inside another model (an Autoencoder's ``encoder_1.<...>``) or inside a GAN
    (``generator/<...>``), renamed to the model's own names.

    When nothing fits, the weights come back unchanged (``check_weights`` then says
    what is missing); when several uses fit, which one is meant is unclear and that
    is a :class:`WeightsError`.

    >>> import nnc
    >>> p = nnc.load("examples/autoencoder.nn")
    >>> found = find_model_weights(p, "Encoder", init_weights(p, "Autoencoder"))
    >>> found.prefix, sorted(found.weights)[0]
    ('encoder_1.', 'dense_1.bias')
    """
    m = program.models[model] if isinstance(model, str) else model
    params = model_params(program, m)
    names = {p.name: p.spec.shape for p in params}
    if set(weights) == set(names):
        return Found(dict(weights), "", m.name)
    roots: dict[str, str] = {}  # prefix -> the model that holds it
    for root in program.models:
        roles = [""]
        for recipe in program.recipes.values():
            if isinstance(recipe, GanRecipe):
                roles += [
                    f"{r}{ROLE_SEPARATOR}" for r, n in gan_models(recipe).items() if n == root
                ]
        for role in roles:
            for prefix in call_prefixes(program, root, m.name):
                roots.setdefault(role + prefix, root)
    # The model's own names with other tensors beside them are not a larger model's:
    # check_weights reports the extra tensors rather than dropping them.
    roots.pop("", None)
    fitting = [
        prefix
        for prefix in roots
        if all(
            prefix + name in weights and np.shape(weights[prefix + name]) == shape
            for name, shape in names.items()
        )
    ]
    if not fitting or not names:
        return Found(dict(weights), "", m.name)
    if len(fitting) > 1:
        where = ", ".join(f"'{p or '(no prefix)'}'" for p in fitting)
        raise WeightsError(
            f"{source} holds the weights of model '{m.name}' more than once (under {where}); "
            "it is unclear which to take",
            hint=f"save the weights of '{m.name}' on their own and pass that file",
        )
    prefix = fitting[0]
    return Found({name: weights[prefix + name] for name in names}, prefix, roots[prefix])
