"""An autoencoder's reconstructions, drawn after every epoch: a few held-out inputs
(the validation set's first, else the training set's) above the model's outputs for
them, in ``reconstructions/epoch-000012.png``. Only for image data, and only for
recipes with ``target input``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from nnc.backends.runtime import Runtime
from nnc.data import PreparedData
from nnc.data.images import image_geometry
from nnc.ir.training import Recipe
from nnc.ir.types import TensorType
from nnc.train.images import RECONSTRUCTIONS, SHOWN, epoch_image, save_reconstructions

Drawer = Callable[[int, Runtime], Path | None]


def reconstruction_drawer(
    recipe: Recipe, data: PreparedData, input_type: TensorType, folder: Path, title: str
) -> Drawer | None:
    """A function drawing epoch ``e``'s reconstructions, or None when the recipe is not
    an autoencoder of images."""
    if recipe.target != "input":
        return None
    held = data.validation if data.validation is not None else data.train
    shown = held.x[:SHOWN]
    stats = data.standardizer

    def raw(values: np.ndarray) -> np.ndarray:
        """Standardised values back in the data's own units, to be drawn."""
        return values if stats is None else values * stats.std + stats.mean

    geometry = image_geometry(recipe.data, input_type.shape, raw(held.x))
    if geometry is None or len(shown) == 0:
        return None

    def draw(epoch: int, runtime: Runtime) -> Path | None:
        outputs = np.asarray(runtime.forward(shown))
        path = epoch_image(folder / RECONSTRUCTIONS, epoch)
        return save_reconstructions(
            raw(shown), raw(outputs), geometry, path, f"{title}: epoch {epoch}"
        )

    return draw
