"""What nnc's TensorFlow runtime adapter needs to know of a generated module, taken
from the IR when the module is emitted (no TensorFlow import)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

Shape = tuple[int | str, ...]


@dataclass(frozen=True)
class ModelInfo:
    """What the adapter needs to know of one generated model class (from the IR)."""

    class_name: str
    inputs: tuple[tuple[str, Shape, str], ...]  # name, per-sample shape, dtype
    shapes: Mapping[str, tuple[int, ...]]  # canonical parameter name -> shape
    buffers: tuple[str, ...] = ()  # canonical names that training moves without gradients
    dropout: bool = False  # whether the class takes a tf.random.Generator
    embedding: bool = False  # a trained embedding: gradients arrive as IndexedSlices
    vocab: Mapping[str, int] = field(default_factory=dict)  # int64 input -> ids in [0, vocab)
    outputs: int = 1


@dataclass(frozen=True)
class Training:
    """How a supervised model trains: the loss function's name in the module, the
    target shape, and why it cannot train when it cannot."""

    loss: str | None
    output_shape: Shape = ()
    reason: str = ""


@dataclass(frozen=True)
class Lowered:
    """A generated supervised (or inference-only) module and what the adapter reads."""

    source: str
    info: ModelInfo
    training: Training


@dataclass(frozen=True)
class LoweredGan:
    """A generated GAN module; ``infos`` by role (generator, discriminator)."""

    source: str
    infos: Mapping[str, ModelInfo]
    from_logits: bool
