"""Training data: built-in sets, users' CSV and NPZ files, and their preparation.

>>> from nnc.data import load_builtin
>>> s = load_builtin("iris")
>>> s.x.shape, s.classes
((150, 4), 3)
"""

from __future__ import annotations

from nnc.data.builtin import load_builtin
from nnc.data.catalog import CATALOG, DatasetInfo
from nnc.data.files import read_data_file
from nnc.data.prepare import (
    PreparedData,
    Split,
    Task,
    fit_inputs,
    prepare,
    prepare_inputs,
    read_source,
    split_indices,
)
from nnc.data.samples import Samples
from nnc.data.standardize import Standardizer

__all__ = [
    "CATALOG",
    "DatasetInfo",
    "PreparedData",
    "Samples",
    "Split",
    "Standardizer",
    "Task",
    "fit_inputs",
    "load_builtin",
    "prepare",
    "prepare_inputs",
    "read_data_file",
    "read_source",
    "split_indices",
]
