"""Training specs: losses, optimizers, schedules, metrics, data and recipes.

Their exact formulas are nnc's, documented in ``docs/semantics.md`` and implemented
on purpose in every backend. Every spec class lists ``positional`` (the order in which
positional DSL arguments bind) and has a ``kind`` discriminator.
"""

import math
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from nnc.errors import Span
from nnc.ir.base import IRModel

PositiveFloat = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]
UnitFloat = Annotated[float, Field(ge=0.0, lt=1.0)]


# A ``str`` field annotated ``Annotated[str, TEXT]`` takes a string literal (a file
# path, a CSV column); every other ``str`` field takes a name only (``monitor = val_loss``).
TEXT = "text"


class Spec(IRModel):
    positional: ClassVar[tuple[str, ...]] = ()
    summary: ClassVar[str] = ""


# -- losses ----------------------------------------------------------------------

Reduction = Literal["mean", "sum"]


class _Reduced(Spec):
    """A loss whose per-element (or per-position) terms are averaged (``mean``, the
    default) or added up (``sum``) over the batch and every other position, time
    steps included: the texts' RNN loss L = Σ_t L_t is ``reduction = sum``."""

    reduction: Reduction = "mean"

    @property
    def summed(self) -> bool:
        """Whether the loss of a batch is a sum over its samples (not a mean): the
        driver then adds up batch losses and data-parallel slices instead of
        weighting them by size."""
        return self.reduction == "sum"


class Mse(_Reduced):
    kind: Literal["mse"] = "mse"
    summary: ClassVar[str] = "mean (or sum) over all elements of (y - t)^2"


class Mae(_Reduced):
    kind: Literal["mae"] = "mae"
    summary: ClassVar[str] = "mean (or sum) over all elements of |y - t|"


class Sse(Spec):
    kind: Literal["sse"] = "sse"
    summary: ClassVar[str] = "0.5 * sum over batch and elements of (y - t)^2"

    @property
    def summed(self) -> bool:
        return True


class CrossEntropy(_Reduced):
    """Categorical cross-entropy over the last axis; targets are class indices or
    one-hot/probability rows. ``from_logits`` defaults from the model: false when it
    ends in softmax, true otherwise. ``ignore = L`` marks label ``L`` as padding: its
    positions add nothing, and the mean divides by the positions not ignored (at the
    runtime boundary a padding position is an all-zero target row)."""

    kind: Literal["cross_entropy"] = "cross_entropy"
    from_logits: bool = True
    ignore: int | None = None
    positional: ClassVar[tuple[str, ...]] = ("from_logits",)
    summary: ClassVar[str] = "-sum_c t_c log p_c, mean (or sum) over the other positions"


class BinaryCrossEntropy(_Reduced):
    kind: Literal["binary_cross_entropy"] = "binary_cross_entropy"
    from_logits: bool = True
    positional: ClassVar[tuple[str, ...]] = ("from_logits",)
    summary: ClassVar[str] = "-(t log p + (1-t) log(1-p)), mean (or sum) over all elements"


Loss = Annotated[Mse | Mae | Sse | CrossEntropy | BinaryCrossEntropy, Field(discriminator="kind")]
LOSSES: dict[str, type[Spec]] = {
    c.model_fields["kind"].default: c for c in (Mse, Mae, Sse, CrossEntropy, BinaryCrossEntropy)
}


# -- optimizers ------------------------------------------------------------------


class Sgd(Spec):
    """``v = μv + g; p -= lr·v`` (Nesterov: ``p -= lr·(g + μv)``), PyTorch's form."""

    kind: Literal["sgd"] = "sgd"
    lr: PositiveFloat = 0.01
    momentum: UnitFloat = 0.0
    nesterov: bool = False
    positional: ClassVar[tuple[str, ...]] = ("lr", "momentum")


class Adagrad(Spec):
    """``G += g²; p -= lr·g/(√G + ε)``."""

    kind: Literal["adagrad"] = "adagrad"
    lr: PositiveFloat = 0.01
    eps: PositiveFloat = 1e-10
    initial_accumulator: Annotated[float, Field(ge=0)] = 0.0
    positional: ClassVar[tuple[str, ...]] = ("lr",)


class Rmsprop(Spec):
    """``v = ρv + (1-ρ)g²; p -= lr·g/(√v + ε)`` (ε outside the root)."""

    kind: Literal["rmsprop"] = "rmsprop"
    lr: PositiveFloat = 0.001
    rho: UnitFloat = 0.9
    eps: PositiveFloat = 1e-8
    positional: ClassVar[tuple[str, ...]] = ("lr",)


class Adam(Spec):
    """Bias-corrected Adam: ``p -= lr·m̂/(√v̂ + ε)`` (PyTorch's ε placement)."""

    kind: Literal["adam"] = "adam"
    lr: PositiveFloat = 0.001
    beta1: UnitFloat = 0.9
    beta2: UnitFloat = 0.999
    eps: PositiveFloat = 1e-8
    positional: ClassVar[tuple[str, ...]] = ("lr",)


Optimizer = Annotated[Sgd | Adagrad | Rmsprop | Adam, Field(discriminator="kind")]
OPTIMIZERS: dict[str, type[Spec]] = {
    c.model_fields["kind"].default: c for c in (Sgd, Adagrad, Rmsprop, Adam)
}


class Cd(Spec):
    """Contrastive divergence, CD-k (PCD-k with ``persistent``): the training of an
    ``rbm`` layer, not a gradient optimizer; its update and its sampling are defined
    in docs/semantics.md ("RBM and contrastive divergence"). A recipe whose optimizer
    is ``cd(...)`` is a :class:`CdRecipe`."""

    kind: Literal["cd"] = "cd"
    k: PositiveInt = 1
    lr: PositiveFloat = 0.1
    momentum: UnitFloat = 0.5
    weight_decay: Annotated[float, Field(ge=0)] = 0.0002
    persistent: bool = False
    positional: ClassVar[tuple[str, ...]] = ("k",)  # cd(1) reads CD-1
    summary: ClassVar[str] = "contrastive divergence CD-k / PCD-k for rbm layers"


# -- learning-rate schedules (per epoch, computed by the driver) ---------------------


class ConstantLr(Spec):
    kind: Literal["constant"] = "constant"
    summary: ClassVar[str] = "lr_e = lr"


class StepLr(Spec):
    kind: Literal["step"] = "step"
    every: PositiveInt = 10
    gamma: PositiveFloat = 0.5
    positional: ClassVar[tuple[str, ...]] = ("every", "gamma")
    summary: ClassVar[str] = "lr_e = lr * gamma ** floor(e / every)"


class ExponentialLr(Spec):
    kind: Literal["exponential"] = "exponential"
    gamma: PositiveFloat = 0.95
    positional: ClassVar[tuple[str, ...]] = ("gamma",)
    summary: ClassVar[str] = "lr_e = lr * gamma ** e"


Schedule = Annotated[ConstantLr | StepLr | ExponentialLr, Field(discriminator="kind")]
SCHEDULES: dict[str, type[Spec]] = {
    c.model_fields["kind"].default: c for c in (ConstantLr, StepLr, ExponentialLr)
}


def learning_rate(base: float, schedule: ConstantLr | StepLr | ExponentialLr, epoch: int) -> float:
    """The learning rate for 0-based ``epoch``.

    >>> learning_rate(0.1, StepLr(every=2, gamma=0.5), 5)
    0.025
    """
    try:
        if isinstance(schedule, StepLr):
            return base * schedule.gamma ** (epoch // schedule.every)
        if isinstance(schedule, ExponentialLr):
            return base * schedule.gamma**epoch
    except OverflowError:  # gamma > 1 over many epochs; the driver refuses it
        return math.inf
    return base


# -- metrics -----------------------------------------------------------------------


class Accuracy(Spec):
    kind: Literal["accuracy"] = "accuracy"


class TopK(Spec):
    kind: Literal["top_k"] = "top_k"
    k: PositiveInt = 5
    positional: ClassVar[tuple[str, ...]] = ("k",)


class MseMetric(Spec):
    kind: Literal["mse"] = "mse"


class MaeMetric(Spec):
    kind: Literal["mae"] = "mae"


Metric = Annotated[Accuracy | TopK | MseMetric | MaeMetric, Field(discriminator="kind")]
METRICS: dict[str, type[Spec]] = {
    c.model_fields["kind"].default: c for c in (Accuracy, TopK, MseMetric, MaeMetric)
}


def metric_name(spec: Accuracy | TopK | MseMetric | MaeMetric) -> str:
    """The column name of a metric in the history: ``accuracy``, ``top_5_accuracy``,
    ``mse``, ``mae``."""
    if isinstance(spec, TopK):
        return f"top_{spec.k}_accuracy"
    return spec.kind


# -- data ---------------------------------------------------------------------------


class Dataset(Spec):
    """A dataset shipped with nnc or generated from the seed (``data digits``).

    ``scale`` maps image pixels to [0, 1] (``unit``) or [-1, 1] (``symmetric``);
    ``upscale`` enlarges images by an integer factor (nearest neighbour), so LeNet-5's
    32x32 input can take the 8x8 digits; ``binarize`` makes every pixel 1 above the
    middle of the value range and 0 otherwise (what an RBM's Bernoulli visible units
    model), in place of ``scale``.
    """

    kind: Literal["builtin"] = "builtin"
    name: str
    scale: Literal["none", "unit", "symmetric"] = "none"
    upscale: PositiveInt = 1
    binarize: bool = False
    positional: ClassVar[tuple[str, ...]] = ("name",)


class DataFile(Spec):
    """A user's CSV or NPZ file (``data "train.csv", label = price``)."""

    kind: Literal["file"] = "file"
    path: Annotated[str, TEXT]
    label: Annotated[str, TEXT] | None = None
    positional: ClassVar[tuple[str, ...]] = ("path",)


class TextData(Spec):
    """Character-level text for a language model: the bundled ``corpus`` (``data
    text(sonnets)``, see :data:`nnc.ir.datasets.CORPORA`) or a UTF-8 file (``data
    text("notes.txt")``, relative to the .nn file). The vocabulary is every distinct
    character of the text, sorted by code point, or those of the ``vocabulary`` file in
    the order they first appear there. The model's input ``int64[L]`` sets the window:
    sample ``i`` reads characters ``iL .. iL + L - 1`` and its targets are the next
    ones, ``iL + 1 .. iL + L`` (docs/training.md, "Text")."""

    kind: Literal["text"] = "text"
    corpus: str | None = None
    path: Annotated[str, TEXT] | None = None
    vocabulary: Annotated[str, TEXT] | None = None

    @property
    def label(self) -> str:
        """How messages name the text."""
        return f"corpus '{self.corpus}'" if self.corpus is not None else f"text file {self.path}"


DataSource = Annotated[Dataset | DataFile | TextData, Field(discriminator="kind")]


class EarlyStopping(Spec):
    monitor: str = "val_loss"
    patience: PositiveInt = 5
    min_delta: Annotated[float, Field(ge=0)] = 0.0
    restore_best: bool = True
    positional: ClassVar[tuple[str, ...]] = ("monitor", "patience")


class Noise(Spec):
    """The GAN generator's input distribution: ``normal`` (0, 1) or ``uniform`` (-1, 1)."""

    dist: Literal["normal", "uniform"] = "normal"
    size: PositiveInt = 16
    positional: ClassVar[tuple[str, ...]] = ("dist", "size")


# -- recipes -------------------------------------------------------------------------


class Recipe(IRModel):
    """A supervised recipe (also an autoencoder, with ``target input``).

    ``pretrain`` names a contrastive divergence recipe (:class:`CdRecipe`) whose model,
    a stack of rbm layers, this recipe's model calls as a layer: ``nnc train`` runs
    that recipe first and starts from its weights (a deep belief network's greedy
    pretraining, then fine-tuning by backprop)."""

    kind: Literal["supervised"] = "supervised"
    name: str
    model: str
    data: DataSource
    loss: Loss
    optimizer: Optimizer = Sgd()
    schedule: Schedule = ConstantLr()
    epochs: PositiveInt = 1
    batch: PositiveInt | Literal["all"] = 32
    l2: Annotated[float, Field(ge=0)] = 0.0
    early_stopping: EarlyStopping | None = None
    metrics: tuple[Metric, ...] = ()
    validation: Annotated[float, Field(ge=0.0, lt=1.0)] | DataSource | None = None
    standardize: bool = False
    target: Literal["labels", "input"] = "labels"
    pretrain: str | None = None
    seed: Annotated[int, Field(ge=0)] = 0
    span: Span | None = None
    setting_spans: dict[str, Span] = Field(default_factory=dict)

    @property
    def models(self) -> tuple[str, ...]:
        return (self.model,)

    def span_of(self, setting: str) -> Span | None:
        return self.setting_spans.get(setting, self.span)


class GanRecipe(IRModel):
    """A generative adversarial recipe naming a generator and a discriminator."""

    kind: Literal["gan"] = "gan"
    name: str
    generator: str
    discriminator: str
    data: DataSource
    noise: Noise = Noise()
    loss: Literal["minimax", "non_saturating"] = "non_saturating"
    from_logits: bool = True
    optimizer: Optimizer = Sgd()
    generator_optimizer: Optimizer | None = None
    discriminator_optimizer: Optimizer | None = None
    d_steps: PositiveInt = 1
    epochs: PositiveInt = 1
    batch: PositiveInt | Literal["all"] = 32
    seed: Annotated[int, Field(ge=0)] = 0
    span: Span | None = None
    setting_spans: dict[str, Span] = Field(default_factory=dict)

    @property
    def models(self) -> tuple[str, ...]:
        return (self.generator, self.discriminator)

    def span_of(self, setting: str) -> Span | None:
        return self.setting_spans.get(setting, self.span)


class CdRecipe(IRModel):
    """An energy-based recipe: an ``rbm`` layer (or, one after another, a stack of
    them) trained by contrastive divergence on unlabelled samples; it has no loss.
    ``validation`` holds out a fraction of the samples exactly as a supervised recipe
    with the same data, fraction and seed does (a deep belief network's pretraining
    then never sees the images its fine-tuning is validated on)."""

    kind: Literal["cd"] = "cd"
    name: str
    model: str
    data: DataSource
    optimizer: Cd = Cd()
    epochs: PositiveInt = 1
    batch: PositiveInt | Literal["all"] = 32
    validation: Annotated[float, Field(ge=0.0, lt=1.0)] | None = None
    seed: Annotated[int, Field(ge=0)] = 0
    span: Span | None = None
    setting_spans: dict[str, Span] = Field(default_factory=dict)

    @property
    def models(self) -> tuple[str, ...]:
        return (self.model,)

    def span_of(self, setting: str) -> Span | None:
        return self.setting_spans.get(setting, self.span)


AnyRecipe = Annotated[Recipe | GanRecipe | CdRecipe, Field(discriminator="kind")]
