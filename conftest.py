"""Collection settings for the whole checkout: the tests and the package's doctests."""

from __future__ import annotations

import importlib.util

collect_ignore_glob: list[str] = []
if importlib.util.find_spec("onnx") is None:
    # The ONNX backend's modules import onnx at the top (only emit and the importer
    # load them); without onnx their doctests cannot even be collected.
    collect_ignore_glob.append("nnc/backends/onnx/*.py")
if importlib.util.find_spec("torch") is None:
    # The torch runtime adapter imports torch at the top (only build loads it).
    collect_ignore_glob += ["nnc/backends/torch/runtime.py", "nnc/backends/torch/distributed.py"]
