"""The typed errors of TensorFlow runtimes (no TensorFlow import)."""

from __future__ import annotations

from nnc.errors import DataError, RecipeError


class TensorflowInputError(DataError, ValueError):
    """Arrays given to a TensorFlow runtime that do not fit the model."""


class TensorflowTrainingError(RecipeError, RuntimeError):
    """A training method of a TensorFlow runtime whose model has no supervised recipe."""
