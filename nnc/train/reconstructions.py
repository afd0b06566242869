"""An autoencoder's reconstructions, drawn after every epoch: a few held-out inputs
(the validation set's first, else the training set's) above the model's outputs for
them, in ``reconstructions/epoch-000012.png``. Only for image data, and only for
recipes with ``target input``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnc.backends.runtime import Runtime
from nnc.data import PreparedData
from nnc.data.images import ImageGeometry, image_geometry
from nnc.data.standardize import Standardizer
from nnc.ir.training import Recipe
from nnc.ir.types import TensorType
from nnc.train.images import RECONSTRUCTIONS, SHOWN, epoch_image, save_reconstructions

Drawer = Callable[[int, Runtime], Path | None]


@dataclass(frozen=True)
class Reconstructions:
    """The held-out inputs whose reconstructions are drawn, and how to show them."""

    shown: np.ndarray
    geometry: ImageGeometry
    standardizer: Standardizer | None

    def raw(self, values: np.ndarray) -> np.ndarray:
        """Standardised values back in the data's own units, to be drawn."""
        stats = self.standardizer
        return values if stats is None else values * stats.std + stats.mean

    def pixels(self, runtime: Runtime) -> tuple[np.ndarray, np.ndarray]:
        """The inputs and the model's outputs for them, as pixels."""
        outputs = np.asarray(runtime.forward(self.shown))
        return (
            self.geometry.to_pixels(self.raw(self.shown)),
            self.geometry.to_pixels(self.raw(outputs)),
        )


def reconstructions_of(
    recipe: Recipe, data: PreparedData, input_type: TensorType
) -> Reconstructions | None:
    """What to draw, or None when the recipe is not an autoencoder of images."""
    if recipe.target != "input":
        return None
    held = data.validation if data.validation is not None else data.train
    shown = held.x[:SHOWN]
    stats = data.standardizer
    raw = held.x if stats is None else held.x * stats.std + stats.mean
    geometry = image_geometry(recipe.data, input_type.shape, raw)
    if geometry is None or len(shown) == 0:
        return None
    return Reconstructions(shown, geometry, stats)


def reconstruction_drawer(
    recipe: Recipe, data: PreparedData, input_type: TensorType, folder: Path, title: str
) -> Drawer | None:
    """A function drawing epoch ``e``'s reconstructions, or None when the recipe is not
    an autoencoder of images."""
    source = reconstructions_of(recipe, data, input_type)
    if source is None:
        return None

    def draw(epoch: int, runtime: Runtime) -> Path | None:
        outputs = np.asarray(runtime.forward(source.shown))
        path = epoch_image(folder / RECONSTRUCTIONS, epoch)
        return save_reconstructions(
            source.raw(source.shown),
            source.raw(outputs),
            source.geometry,
            path,
            f"{title}: epoch {epoch}",
        )

    return draw
