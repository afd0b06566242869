"""Raw samples as a data source gives them, before they are fitted to a model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Samples:
    """Features and targets as read or generated.

    ``x`` is ``[N, *features]`` float32. ``y`` is ``[N]`` int64 class labels when
    ``classes > 0``, float values ``[N, *target]`` otherwise, or None when the source
    has no targets (an autoencoder's file, a file to predict from). ``source`` names
    the data in messages; ``lines`` maps each sample to its line in a CSV file so that
    messages can point at it.
    """

    x: np.ndarray
    y: np.ndarray | None
    source: str
    classes: int = 0
    lines: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.x)

    def where(self, index: int) -> str:
        """Where sample ``index`` lives, for messages: a CSV line or an array index."""
        if self.lines is not None:
            return f"{self.source}, line {int(self.lines[index])}"
        return f"{self.source}, sample {index}"

    def take(self, index: np.ndarray) -> Samples:
        """The samples at ``index``, in that order."""
        return Samples(
            x=self.x[index],
            y=None if self.y is None else self.y[index],
            source=self.source,
            classes=self.classes,
            lines=None if self.lines is None else self.lines[index],
        )
