"""From a recipe's data settings to the arrays a runtime trains on.

The steps, in order (``docs/training.md`` and ``docs/semantics.md``, Training):

1. read the source: a built-in set (with ``scale`` and ``upscale``) or a file;
2. fit the features to the model's input shape (reshape when the element counts
   agree; a symbolic dim takes the data's size);
3. split off the validation set (by fraction, or from its own source);
4. standardise with the training split's statistics (``standardize true``);
5. prepare the targets for the loss: one-hot rows for ``cross_entropy``, arrays
   shaped like the output otherwise, the inputs themselves for ``target input``.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnc.data.builtin import load_builtin
from nnc.data.files import read_data_file
from nnc.data.samples import Samples
from nnc.data.standardize import Standardizer
from nnc.errors import DataError
from nnc.ir.datasets import CATALOG
from nnc.ir.program import Model, Program
from nnc.ir.training import (
    BinaryCrossEntropy,
    CdRecipe,
    CrossEntropy,
    DataFile,
    Dataset,
    GanRecipe,
    Recipe,
    TextData,
)
from nnc.ir.types import Dim, TensorType, format_shape


@dataclass(frozen=True)
class Task:
    """What the targets mean, for metrics: ``categorical`` (one-hot over the last
    axis, ``classes`` wide), ``binary`` (0/1 targets; outputs above ``threshold``
    count as 1) or ``regression``."""

    kind: str
    classes: int = 0
    threshold: float = 0.5

    @property
    def is_classifier(self) -> bool:
        return self.kind != "regression"


@dataclass(frozen=True)
class Split:
    """Inputs and targets of one split, as the runtime takes them."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True)
class PreparedData:
    train: Split
    validation: Split | None
    standardizer: Standardizer | None
    task: Task
    source: str


def resolve_path(path: str, base: Path | None) -> Path:
    """A data file path from a recipe: relative paths are relative to the .nn file."""
    p = Path(path).expanduser()
    return p if p.is_absolute() or base is None else base / p


def read_source(
    source: Dataset | DataFile | TextData,
    seed: int,
    base: Path | None = None,
    *,
    targets: bool = True,
) -> Samples:
    """Raw samples from a built-in set (scaled and upscaled as asked) or a file."""
    if isinstance(source, TextData):
        raise DataError(
            f"{source.label} is text for a language model; it trains a supervised recipe "
            "whose model takes int64[L] windows"
        )
    if isinstance(source, DataFile):
        return read_data_file(resolve_path(source.path, base), source.label, targets=targets)
    samples = load_builtin(source.name, seed)
    return Samples(
        x=transform_builtin(samples.x, source),
        y=samples.y if targets else None,
        source=samples.source,
        classes=samples.classes,
    )


@dataclass(frozen=True)
class InputTransform:
    """What a built-in set's ``scale`` (or ``binarize``) and ``upscale`` do to its raw
    samples, in order: ``x * scale + shift`` (``unit`` maps the value range to [0, 1],
    ``symmetric`` to [-1, 1]) or, with ``binarize``, ``1`` where ``x > threshold`` (the
    middle of the value range) and ``0`` elsewhere, then each image ``[C, H, W]``
    repeated ``upscale`` times along H and W (nearest neighbour). Training,
    ``nnc predict`` and the graph ``nnc export`` writes all apply exactly this."""

    scale: float = 1.0
    shift: float = 0.0
    upscale: int = 1
    image: tuple[int, int, int] | None = None  # the raw image shape, when upscaling
    description: str = ""
    threshold: float | None = None  # binarize: 1 where x > threshold, else 0

    @property
    def affine(self) -> bool:
        return (self.scale, self.shift) != (1.0, 0.0)

    def apply(self, x: np.ndarray) -> np.ndarray:
        if self.affine:
            x = x * np.float32(self.scale) + np.float32(self.shift)
        if self.threshold is not None:
            x = (x > self.threshold).astype(np.float32)
        if self.upscale != 1 and self.image is not None:
            c, h, w = self.image
            f = self.upscale
            x = x.reshape(len(x), c, h, w).repeat(f, axis=2).repeat(f, axis=3)
        return np.ascontiguousarray(x, dtype=np.float32)


def input_transform(source: Dataset) -> InputTransform:
    """The :class:`InputTransform` of a built-in set's options, or a DataError when
    the set has no value range (``scale``) or is not an image set (``upscale``)."""
    info = CATALOG[source.name]
    scale, shift = 1.0, 0.0
    threshold = None
    if source.binarize:
        if info.value_range is None or source.scale != "none":
            raise DataError(
                f"dataset '{source.name}': 'binarize' applies to image sets with a value "
                "range, without 'scale'"
            )
        threshold = 0.5 * (info.value_range[0] + info.value_range[1])
    if source.scale != "none":
        if info.value_range is None:
            raise DataError(
                f"dataset '{source.name}' has no fixed value range; 'scale' applies to images"
            )
        lo, hi = info.value_range
        scale, shift = 1.0 / (hi - lo), -lo / (hi - lo)
        if source.scale == "symmetric":
            scale, shift = 2.0 * scale, 2.0 * shift - 1.0
    if source.upscale != 1 and info.image is None:
        raise DataError(f"dataset '{source.name}' is not an image set; 'upscale' needs one")
    parts = [f"scale = {source.scale}"] * (source.scale != "none")
    parts += ["binarize = true"] * source.binarize
    parts += [f"upscale = {source.upscale}"] * (source.upscale != 1)
    return InputTransform(
        scale=scale,
        shift=shift,
        upscale=source.upscale,
        image=info.image if source.upscale != 1 else None,
        description=", ".join([source.name, *parts]),
        threshold=threshold,
    )


def transform_builtin(x: np.ndarray, source: Dataset) -> np.ndarray:
    """Apply a built-in set's ``scale`` and ``upscale`` options to raw features."""
    transformed = input_transform(source).apply(x)
    if source.upscale != 1:
        return transformed.reshape(len(x), *CATALOG[source.name].feature_shape(source.upscale))
    return transformed


def fit_inputs(x: np.ndarray, input_type: TensorType, where: str) -> np.ndarray:
    """Features reshaped to the model's per-sample input shape, or a DataError naming
    the dim that differs (expected vs received)."""
    want = input_type.shape
    have = x.shape[1:]
    if all(isinstance(d, int) for d in want):
        if have != want:
            if math.prod(have) != math.prod(int(d) for d in want):
                raise DataError(_shape_mismatch(where, have, want))
            x = x.reshape(len(x), *(int(d) for d in want))
    else:
        if len(have) == len(want) - 1 and want[-1] == 1:
            x = x[..., None]  # a sequence of scalars for an input [t, 1]
            have = x.shape[1:]
        if len(have) != len(want):
            raise DataError(_shape_mismatch(where, have, want))
        bindings: dict[str, int] = {}
        for i, (d, got) in enumerate(zip(want, have, strict=True)):
            symbol = isinstance(d, str) and d.isidentifier()
            if (symbol and bindings.setdefault(str(d), got) != got) or (not symbol and d != got):
                raise DataError(_shape_mismatch(where, have, want, i))
    if input_type.dtype == "int64":
        if not np.all(x == np.round(x)):
            raise DataError(
                f"{where}: the model input is {input_type}; the features must be integers"
            )
        return x.astype(np.int64)
    return np.ascontiguousarray(x, dtype=np.float32)


def _shape_mismatch(
    where: str, have: tuple[int, ...], want: tuple[Dim, ...], dim: int | None = None
) -> str:
    head = f"{where}: samples have shape {list(have)} but the model input is {format_shape(want)}"
    if dim is None and len(have) == len(want):
        dim = next(
            (
                i
                for i, (a, b) in enumerate(zip(have, want, strict=True))
                if isinstance(b, int) and a != b
            ),
            None,
        )
    if dim is not None:
        return f"{head}: dim {dim} expected {want[dim]}, received {have[dim]}"
    static = all(isinstance(d, int) for d in want)
    expected = f"{math.prod(int(d) for d in want)} values" if static else f"rank {len(want)}"
    received = f"{math.prod(have)} values" if static else f"rank {len(have)}"
    return f"{head}: expected {expected} per sample, received {received}"


def task_for(recipe: Recipe, output: TensorType, targets: np.ndarray | None = None) -> Task:
    """How metrics read the outputs: categorical for cross-entropy, binary for 0/1
    targets, else regression."""
    loss = recipe.loss
    if isinstance(loss, CrossEntropy):
        last = output.shape[-1]
        return Task("categorical", classes=int(last) if isinstance(last, int) else 0)
    if isinstance(loss, BinaryCrossEntropy):
        return Task("binary", classes=2, threshold=0.0 if loss.from_logits else 0.5)
    if recipe.target == "labels" and targets is not None and np.isin(targets, (0.0, 1.0)).all():
        return Task("binary", classes=2, threshold=0.5)
    return Task("regression")


def prepare_targets(
    samples: Samples, x: np.ndarray, recipe: Recipe, output: TensorType
) -> np.ndarray:
    """The targets the runtime takes for ``recipe.loss`` (see the runtime docstring)."""
    if recipe.target == "input":
        return x
    y = samples.y
    if y is None:
        raise DataError(f"{samples.source} has no targets; the recipe needs them")
    if isinstance(recipe.loss, CrossEntropy):
        classes = int(output.shape[-1])
        per_output = output.shape[:-1]
        if y.ndim >= 2 and y.shape[-1] == classes and y.ndim - 1 == len(output.shape):
            return y.astype(np.float32)  # already one-hot or probability rows
        ignore = recipe.loss.ignore
        padding = (y == ignore) if ignore is not None else np.zeros(y.shape, bool)
        labels = _class_labels(samples, np.where(padding, 0, y), classes, output)
        if len(per_output) and labels.ndim == 1:
            raise DataError(
                f"{samples.source}: the model outputs {output} (one class per position); "
                "the targets need one label per position"
            )
        # A padding label (ignore = L) becomes an all-zero row: it adds nothing to the
        # loss and is not counted (docs/semantics.md, Losses).
        return np.eye(classes, dtype=np.float32)[labels] * ~padding[..., None]
    values = _fit_values(samples, np.asarray(y, dtype=np.float32), output)
    if isinstance(recipe.loss, BinaryCrossEntropy):
        bad = np.argwhere((values < 0) | (values > 1))
        if len(bad):
            i = int(bad[0][0])
            raise DataError(
                f"{samples.where(i)}: binary_cross_entropy needs targets in [0, 1]; "
                f"received {float(values[tuple(bad[0])]):g}"
            )
    return values


def _fit_values(samples: Samples, values: np.ndarray, output: TensorType) -> np.ndarray:
    """Value targets shaped like the model output (row-major when the counts agree)."""
    if values.ndim == 1:
        values = values[:, None]
    want = output.shape
    have = values.shape[1:]
    if all(isinstance(d, int) for d in want):
        size = math.prod(int(d) for d in want)
        if math.prod(have) != size:
            raise DataError(
                f"{samples.source}: targets have shape {list(have)} ({math.prod(have)} values) "
                f"per sample but the model outputs {output} ({size} values)"
            )
        return values.reshape(len(values), *(int(d) for d in want))
    if len(have) != len(want) or any(
        isinstance(d, int) and d != got for d, got in zip(want, have, strict=True)
    ):
        raise DataError(
            f"{samples.source}: targets have shape {list(have)} per sample but the model "
            f"outputs {output}"
        )
    return values


def _class_labels(samples: Samples, y: np.ndarray, classes: int, output: TensorType) -> np.ndarray:
    integral = y == np.round(y)
    if not np.all(integral):
        i = int(np.argwhere(~integral)[0][0])
        raise DataError(
            f"{samples.where(i)}: label {float(y.reshape(len(y), -1)[i][0]):g} is not a class "
            f"number; cross_entropy needs integer labels 0..{classes - 1}"
        )
    outside = (y < 0) | (y >= classes)
    if np.any(outside):
        index = tuple(int(v) for v in np.argwhere(outside)[0])
        raise DataError(
            f"{samples.where(index[0])}: label {int(y[index])} is outside the classes "
            f"0..{classes - 1} of the model's output {output}"
        )
    return y.astype(np.int64)


def split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation indices, each in the original order.

    The validation set is the last ``floor(fraction * n)`` entries of a permutation
    drawn from ``default_rng([seed, crc32("validation")])``.

    >>> train, val = split_indices(10, 0.2, seed=0)
    >>> len(train), len(val), sorted([*train, *val]) == list(range(10))
    (8, 2, True)
    """
    n_val = math.floor(fraction * n)
    rng = np.random.default_rng([seed, zlib.crc32(b"validation")])
    order = rng.permutation(n)
    return np.sort(order[: n - n_val]), np.sort(order[n - n_val :])


def prepare(
    program: Program,
    recipe: Recipe,
    base: Path | None = None,
    standardizer: Standardizer | None = None,
) -> PreparedData:
    """Load, split, standardise and shape a recipe's data for its model.

    ``standardizer`` (from a checkpoint) replaces statistics computed afresh.
    """
    model = program.models[recipe.model]
    input_type, output = model.inputs[0].type, model.output_types[0]
    if isinstance(recipe.data, TextData):
        return _prepare_text(recipe, recipe.data, input_type, output, base)
    samples = read_source(recipe.data, recipe.seed, base)
    x = fit_inputs(samples.x, input_type, samples.source)
    samples = Samples(
        x=x, y=samples.y, source=samples.source, classes=samples.classes, lines=samples.lines
    )

    if isinstance(recipe.validation, float) and recipe.validation > 0:
        train_index, val_index = split_indices(len(samples), recipe.validation, recipe.seed)
        if len(val_index) == 0 or len(train_index) == 0:
            raise DataError(
                f"validation {recipe.validation} of the {len(samples)} samples of "
                f"{samples.source} leaves {len(val_index)} for validation and "
                f"{len(train_index)} for training; both need at least one",
                recipe.span_of("validation"),
            )
        train, val = samples.take(train_index), samples.take(val_index)
    elif isinstance(recipe.validation, Dataset | DataFile):
        train = samples
        val_raw = read_source(recipe.validation, recipe.seed, base)
        val = Samples(
            x=fit_inputs(val_raw.x, input_type, val_raw.source),
            y=val_raw.y,
            source=val_raw.source,
            classes=val_raw.classes,
            lines=val_raw.lines,
        )
    else:
        train, val = samples, None

    if recipe.standardize and standardizer is None:
        standardizer = Standardizer.fit(train.x, input_type)
    if not recipe.standardize:
        standardizer = None

    def finish(part: Samples) -> Split:
        xs = standardizer.apply(part.x) if standardizer is not None else part.x
        return Split(x=xs, y=prepare_targets(part, xs, recipe, output))

    train_split = finish(train)
    return PreparedData(
        train=train_split,
        validation=finish(val) if val is not None else None,
        standardizer=standardizer,
        task=task_for(recipe, output, train_split.y),
        source=samples.source,
    )


def text_window(input_type: TensorType, source: TextData) -> int:
    """The window length of text data: the model's input ``int64[L]``."""
    shape = input_type.shape
    if input_type.dtype != "int64" or len(shape) != 1 or not isinstance(shape[0], int):
        raise DataError(
            f"{source.label}: a language model on text takes windows of class numbers, "
            f"an input int64[L] with a fixed length L. Received: input {input_type}"
        )
    return shape[0]


def check_vocabulary(
    output: TensorType, length: int, characters: int, source: TextData, recipe: Recipe
) -> None:
    """A DataError unless the model outputs ``[length, characters]``."""
    if output.shape != (length, characters):
        raise DataError(
            f"{source.label} has a vocabulary of {characters} characters, so the model "
            f"must output [{length}, {characters}]. Received: {output}",
            recipe.span_of("data"),
        )


def _prepare_text(
    recipe: Recipe, source: TextData, input_type: TensorType, output: TensorType, base: Path | None
) -> PreparedData:
    """Windows of a text and their next characters, split as :func:`prepare` splits
    (whole windows; they do not overlap), the targets one-hot per position."""
    from nnc.data.text import text_samples, vocabulary_of

    length = text_window(input_type, source)
    vocabulary = vocabulary_of(source, base)
    check_vocabulary(output, length, len(vocabulary), source, recipe)
    samples = text_samples(source, length, vocabulary, base)
    val: Samples | None = None
    if isinstance(recipe.validation, float) and recipe.validation > 0:
        train_index, val_index = split_indices(len(samples), recipe.validation, recipe.seed)
        if len(val_index) == 0 or len(train_index) == 0:
            raise DataError(
                f"validation {recipe.validation} of the {len(samples)} windows of "
                f"{samples.source} leaves {len(val_index)} for validation and "
                f"{len(train_index)} for training; both need at least one",
                recipe.span_of("validation"),
            )
        samples, val = samples.take(train_index), samples.take(val_index)
    elif isinstance(recipe.validation, TextData):
        val = text_samples(recipe.validation, length, vocabulary, base)
    elif recipe.validation is not None and recipe.validation != 0:
        raise DataError(
            f"recipe '{recipe.name}' trains on {source.label}; its validation data must be "
            'text too (validation text("file.txt")) or a fraction',
            recipe.span_of("validation"),
        )

    def finish(part: Samples) -> Split:
        return Split(x=part.x, y=prepare_targets(part, part.x, recipe, output))

    return PreparedData(
        train=finish(samples),
        validation=None if val is None else finish(val),
        standardizer=None,
        task=task_for(recipe, output),
        source=samples.source,
    )


def prepare_gan(program: Program, recipe: GanRecipe, base: Path | None = None) -> Samples:
    """The real samples of a GAN recipe: its data, scaled and upscaled as it says and
    shaped like the discriminator's input (float32). Targets, if any, are ignored."""
    d_input = program.models[recipe.discriminator].inputs[0].type
    samples = read_source(recipe.data, recipe.seed, base, targets=False)
    x = fit_inputs(samples.x, d_input, samples.source)
    if len(x) == 0:
        raise DataError(f"{samples.source} holds no samples", recipe.span_of("data"))
    return Samples(x=x, y=None, source=samples.source, classes=0, lines=samples.lines)


def prepare_cd(
    program: Program, recipe: CdRecipe, base: Path | None = None
) -> tuple[Samples, np.ndarray | None, Standardizer | None]:
    """The samples of a contrastive divergence recipe: its data, transformed as it
    says, flattened to ``[n, visible]`` (float32), every value in [0, 1] (what the
    rbm's Bernoulli visible units model), then split as :func:`prepare` splits
    (``split_indices``): the training samples and the validation ones (or None).
    Targets, if any, are ignored. With Gaussian visible units (the first rbm's
    ``visible = gaussian``) the values may be any finite number, and every unit is
    standardised with the training samples' mean and standard deviation (1 where it
    is 0), the validation samples with the same statistics; those statistics are the
    third value (float32, what the run folder keeps as ``standardize.npz``; None for
    Bernoulli units)."""
    model = program.models[recipe.model]
    gaussian = getattr(model.nodes[0], "visible", "bernoulli") == "gaussian"
    samples = read_source(recipe.data, recipe.seed, base, targets=False)
    x = fit_inputs(samples.x, model.inputs[0].type, samples.source)
    if len(x) == 0:
        raise DataError(f"{samples.source} holds no samples", recipe.span_of("data"))
    lo, hi = float(np.min(x)), float(np.max(x))
    if not gaussian and (lo < 0.0 or hi > 1.0):
        raise DataError(
            f"{samples.source}: the rbm's Bernoulli visible units take values in [0, 1]; "
            f"the samples range over [{lo:g}, {hi:g}]",
            recipe.span_of("data"),
            hint="scale the data to [0, 1] (built-in sets: binarize = true or scale = unit)",
        )
    x = np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32)
    val = None
    if recipe.validation:
        train_index, val_index = split_indices(len(x), recipe.validation, recipe.seed)
        if len(val_index) == 0 or len(train_index) == 0:
            raise DataError(
                f"validation {recipe.validation} of the {len(x)} samples of "
                f"{samples.source} leaves {len(val_index)} for validation and "
                f"{len(train_index)} for training; both need at least one",
                recipe.span_of("validation"),
            )
        x, val = x[train_index], x[val_index]
    if gaussian:
        mean = x.mean(axis=0, dtype=np.float64)
        std = x.std(axis=0, dtype=np.float64)
        std[std == 0] = 1.0
        x = ((x - mean) / std).astype(np.float32)
        val = None if val is None else ((val - mean) / std).astype(np.float32)
        stats = Standardizer(mean=mean[None].astype(np.float32), std=std[None].astype(np.float32))
        return Samples(x=x, y=None, source=samples.source, classes=0), val, stats
    return Samples(x=x, y=None, source=samples.source, classes=0), val, None


def prepare_inputs(
    program: Program,
    model: Model,
    samples: Samples,
    recipe: Recipe | None,
    standardizer: Standardizer | None,
) -> np.ndarray:
    """Features for prediction: fitted to the model input and standardised like the
    training data (``recipe.standardize`` needs ``standardizer``)."""
    x = samples.x
    data = recipe.data if recipe is not None else None
    if isinstance(data, Dataset) and (data.scale != "none" or data.upscale != 1 or data.binarize):
        # Inputs come as the data set's raw features: scale and upscale them alike.
        raw = CATALOG[data.name].features
        if math.prod(x.shape[1:]) != math.prod(raw):
            raise DataError(
                f"{samples.source}: samples have shape {list(x.shape[1:])}; the recipe "
                f"scales raw '{data.name}' samples of shape {list(raw)}"
            )
        x = transform_builtin(x, data)
    x = fit_inputs(x, model.inputs[0].type, samples.source)
    if recipe is not None and recipe.standardize:
        if standardizer is None:
            raise DataError(
                f"recipe '{recipe.name}' standardises its inputs, but no statistics were found",
                hint="pass a run folder or a checkpoint as --weights (they hold standardize.npz)",
            )
        x = standardizer.apply(x)
    return x
