"""Training data: built-in sets, users' CSV and NPZ files, and their preparation.

Importing this package is cheap: ``nnc check`` reads only the catalog of built-in
sets (:mod:`nnc.ir.datasets`, re-exported here), and the loaders (which need NumPy)
are imported on first use.

>>> from nnc.data import load_builtin
>>> s = load_builtin("iris")
>>> s.x.shape, s.classes
((150, 4), 3)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nnc.data.builtin import load_builtin
    from nnc.data.files import read_data_file
    from nnc.data.preparation import (
        PreparedData,
        Split,
        Task,
        fit_inputs,
        prepare,
        prepare_gan,
        prepare_inputs,
        read_source,
        split_indices,
    )
    from nnc.data.samples import Samples
    from nnc.data.standardize import Standardizer
    from nnc.ir.datasets import CATALOG, DatasetInfo

_HOMES = {
    "CATALOG": "nnc.ir.datasets",
    "DatasetInfo": "nnc.ir.datasets",
    "load_builtin": "builtin",
    "read_data_file": "files",
    "PreparedData": "preparation",
    "Split": "preparation",
    "Task": "preparation",
    "fit_inputs": "preparation",
    "prepare": "preparation",
    "prepare_gan": "preparation",
    "prepare_inputs": "preparation",
    "read_source": "preparation",
    "split_indices": "preparation",
    "Samples": "samples",
    "Standardizer": "standardize",
}

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
    "prepare_gan",
    "prepare_inputs",
    "read_data_file",
    "read_source",
    "split_indices",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'nnc.data' has no attribute '{name}'")
    return getattr(importlib.import_module(home if "." in home else f"nnc.data.{home}"), name)
