"""What each built-in dataset looks like, without loading it.

``nnc check`` (:mod:`nnc.ir.passes.validate`) uses this table to reject a recipe
whose model cannot take its data, which is why it lives with the IR and not in
:mod:`nnc.data`: the loaders in :mod:`nnc.data.builtin` produce exactly these shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    features: tuple[int, ...]
    target: Literal["class", "value"]
    classes: int = 0
    target_shape: tuple[int, ...] = ()
    description: str = ""
    image: tuple[int, int, int] | None = None
    # The fixed range of the raw values, for ``scale = unit | symmetric`` (images only).
    value_range: tuple[float, float] | None = None

    def feature_shape(self, upscale: int = 1) -> tuple[int, ...]:
        """Per-sample shape after integer upscaling (images only)."""
        if upscale == 1 or self.image is None:
            return self.features
        c, h, w = self.image
        return (c * h * upscale * w * upscale,)

    @property
    def target_size(self) -> int:
        return self.classes if self.target == "class" else _prod(self.target_shape)


def _prod(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


CATALOG: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("and", (2,), "value", target_shape=(1,), description="logical AND truth table"),
        DatasetInfo("or", (2,), "value", target_shape=(1,), description="logical OR truth table"),
        DatasetInfo("xor", (2,), "value", target_shape=(1,), description="logical XOR truth table"),
        DatasetInfo(
            "digits",
            (64,),
            "class",
            classes=10,
            description="1,797 handwritten digits, 8x8 grey levels 0..16 (UCI optdigits test set)",
            image=(1, 8, 8),
            value_range=(0.0, 16.0),
        ),
        DatasetInfo(
            "iris",
            (4,),
            "class",
            classes=3,
            description="Fisher's 150 iris flowers, 4 measurements (cm), 3 species",
        ),
        DatasetInfo(
            "spirals",
            (2,),
            "class",
            classes=3,
            description="three interleaved 2-D spirals, 300 points each, generated from the seed",
        ),
        DatasetInfo(
            "houses",
            (6,),
            "value",
            target_shape=(1,),
            description="500 synthetic house prices ($1000s) from 6 features, generated from the "
            "seed",
        ),
        DatasetInfo(
            "sine",
            (20, 1),
            "value",
            target_shape=(1,),
            description="1,000 windows of 20 steps of noisy sine waves; the target is the next "
            "value",
        ),
        DatasetInfo(
            "waves",
            (24, 1),
            "class",
            classes=3,
            description="600 24-step sine, square and sawtooth waves; classify the shape",
        ),
        DatasetInfo(
            "blobs",
            (1, 16, 16),
            "value",
            target_shape=(1, 16, 16),
            description="600 noisy 16x16 images of one to three bright discs and boxes on a "
            "shaded background; the target is the 0/1 mask of the shapes, generated from the seed",
            image=(1, 16, 16),
        ),
        DatasetInfo(
            "wave_steps",
            (24, 1),
            "class",
            classes=3,
            target_shape=(24,),
            description="the 600 waves with the shape as the label of every step",
        ),
        DatasetInfo(
            "volumes",
            (1, 8, 8, 8),
            "class",
            classes=2,
            description="400 noisy 8x8x8 volumes holding a cube or a 3-D cross; classify the "
            "shape, generated from the seed",
        ),
        DatasetInfo(
            "reverse",
            (8,),
            "class",
            classes=10,
            target_shape=(8,),
            description="2,000 sequences of 5 to 8 tokens 1..9, left-padded with 0 to length 8; "
            "the target is the sequence reversed (padding label 0 at the end), generated from "
            "the seed",
        ),
    )
}


@dataclass(frozen=True)
class CorpusInfo:
    """A text corpus shipped with nnc (``data text(NAME)``): ``characters`` is the size
    of its vocabulary (every distinct character), which the model's class axis must
    equal; ``size`` its length in characters."""

    name: str
    file: str
    characters: int
    size: int
    description: str = ""


CORPORA: dict[str, CorpusInfo] = {
    info.name: info
    for info in (
        CorpusInfo(
            "sonnets",
            "sonnets.txt",
            characters=62,
            size=95_728,
            description="Shakespeare's 154 sonnets (1609), 95,728 ASCII characters, 62 distinct "
            "(Project Gutenberg's text, public domain)",
        ),
    )
}
