"""What an exported graph does to raw samples before the model, so that it computes
what ``nnc predict`` computes from the same input (docs/backends/onnx.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nnc.ir.program import Model, Program
from nnc.ir.training import CdRecipe, Dataset, Recipe

if TYPE_CHECKING:
    from nnc.data.preparation import InputTransform


@dataclass(frozen=True)
class Preprocessing:
    """What a run did to its raw samples before the model: a built-in set's ``scale``
    and ``upscale`` (:class:`nnc.data.preparation.InputTransform`), then the input
    standardisation ``(mean, std)``, each shaped ``[1, *sample]``."""

    transform: InputTransform | None = None
    standardize: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def empty(self) -> bool:
        return self.transform is None and self.standardize is None

    def describe(self) -> str:
        """``digits, scale = unit, upscale = 4; standardised with the run's statistics``."""
        parts = []
        if self.transform is not None:
            parts.append(self.transform.description)
        if self.standardize is not None:
            parts.append("standardised with the run's statistics")
        return "; ".join(parts)


def preprocessing(
    program: Program, model: Model, standardize: tuple[np.ndarray, np.ndarray] | None
) -> Preprocessing:
    """What the graph of ``model`` does to raw samples: the ``scale`` and ``upscale``
    of the built-in set its recipe trains on (when ``model`` reads that data: it is
    the recipe's model), and the run's standardisation."""
    from nnc.data.preparation import input_transform

    transform = None
    recipe = next(
        (
            r
            for r in program.recipes.values()
            if isinstance(r, Recipe | CdRecipe) and r.model == model.name
        ),
        None,
    )
    if recipe is not None and isinstance(recipe.data, Dataset):
        found = input_transform(recipe.data)
        if found.affine or found.upscale != 1 or found.threshold is not None:
            transform = found
    return Preprocessing(transform, standardize)
