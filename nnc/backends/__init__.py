"""Backends: each lowers checked IR to an artefact and builds a runtime from it.

A backend is a package ``nnc.backends.<name>`` exposing:

- ``NAME``: its name;
- ``emit(program, model=None, source="<program>") -> str | bytes``: the generated
  artefact (Python source; serialized ModelProto bytes for ONNX); ``source`` names
  the spec in the generated header. It imports no framework;
- ``build(program, model=None, weights=None, **options) -> Runtime``: a ready
  runtime (see :mod:`nnc.backends.runtime`); this imports the framework.

Backends are imported lazily, by name, so that ``nnc check`` never pays for them.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from nnc.errors import BackendError, did_you_mean

BACKENDS: dict[str, str] = {
    "numpy": "nnc.backends.numpy",
    "torch": "nnc.backends.torch",
    "tensorflow": "nnc.backends.tensorflow",
    "onnx": "nnc.backends.onnx",
}
ALIASES = {"pytorch": "torch", "tf": "tensorflow", "np": "numpy"}
FRAMEWORK = {"torch": "torch", "tensorflow": "tensorflow", "onnx": "onnx", "numpy": "numpy"}
EXTRA = {"torch": "torch", "tensorflow": "tensorflow", "onnx": "onnx", "numpy": ""}


def backend_name(name: str) -> str:
    name = ALIASES.get(name, name)
    if name not in BACKENDS:
        raise BackendError(
            f"unknown backend '{name}'. Backends: {', '.join(BACKENDS)}",
            hint=did_you_mean(name, BACKENDS),
        )
    return name


def get_backend(name: str) -> ModuleType:
    """The backend module (emit/build); importing it never imports its framework."""
    name = backend_name(name)
    try:
        return importlib.import_module(BACKENDS[name])
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith(BACKENDS[name]):
            raise BackendError(f"the {name} backend is not available in this build") from None
        raise


def framework_available(name: str) -> bool:
    """Whether the framework a backend runs on is installed (without importing it)."""
    name = backend_name(name)
    return importlib.util.find_spec(FRAMEWORK[name]) is not None


def require_framework(name: str) -> None:
    """Raise a clear error when a backend's framework is missing."""
    name = backend_name(name)
    if not framework_available(name):
        extra = EXTRA[name]
        raise BackendError(
            f"the {name} backend needs {FRAMEWORK[name]}, which is not installed",
            hint=f"pip install 'nnc[{extra}]'" if extra else None,
        )


def installed_backends() -> list[str]:
    return [n for n in BACKENDS if framework_available(n)]
