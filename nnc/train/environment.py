"""``environment.json``: what a run ran on, so that it can be reproduced.

The recipe (``recipe.nn``, every setting written out, and ``recipe.json``) says what
was trained; this says with what: nnc's version, the backend and device, Python, the
machine, the version of every package the numbers depend on (read from the installed
distributions' metadata, so nothing is imported), and the environment variables that
change how a framework computes.
"""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from nnc.backends.registry import framework_packages

RUN_ENVIRONMENT = "environment.json"
# The backends' frameworks (from the registry), the distributions some ship under
# (tensorflow-cpu, keras), and what nnc itself runs on.
PACKAGES = (
    *framework_packages(),
    "tensorflow-cpu",
    "keras",
    "lark",
    "pydantic",
    "matplotlib",
)
# Variables that change a framework's numbers or threads.
VARIABLES = (
    "TF_ENABLE_ONEDNN_OPTS",
    "TF_SET_ONEDNN_FPMATH_MODE",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "CUBLAS_WORKSPACE_CONFIG",
)


def describe(
    backend: str, device: str | None = None, workers: int = 1, precision: str = "float32"
) -> dict[str, Any]:
    """The run's environment as a JSON-ready dict.

    >>> sorted(describe("numpy"))[:5]
    ['backend', 'device', 'machine', 'nnc', 'packages']
    """
    from nnc._version import __version__

    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "nnc": __version__,
        "backend": backend,
        "device": device or "cpu",
        "workers": workers,
        "precision": precision,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": packages,
        "variables": {v: os.environ[v] for v in VARIABLES if v in os.environ},
    }


def write_environment(
    folder: Path, backend: str, device: str | None, workers: int = 1, precision: str = "float32"
) -> Path:
    from nnc.train.rundir import atomic_write_text

    path = folder / RUN_ENVIRONMENT
    described = describe(backend, device, workers, precision)
    atomic_write_text(path, json.dumps(described, indent=1) + "\n")
    return path
