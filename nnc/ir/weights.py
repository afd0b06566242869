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
from dataclasses import dataclass
from pathlib import Path

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
        value = p.spec.init.sample(p.spec.shape, p.spec.fan_in, p.spec.fan_out, rng)
        out[name] = np.asarray(value, dtype=np.float32).reshape(p.spec.shape)
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
        with open_regular(path, WeightsError, "no such weights file") as f:
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
