"""Backends: each lowers checked IR to an artefact and builds a runtime from it.

A backend is a package ``nnc.backends.<name>`` exposing:

- ``NAME``: its name;
- ``emit(program, model=None, source="<program>") -> str | bytes``: the generated
  artefact (Python source; serialized ModelProto bytes for ONNX); ``source`` names
  the spec in the generated header. It imports no framework;
- ``build(program, model=None, weights=None, **options) -> Runtime``: a ready
  runtime (see :mod:`nnc.backends.runtime`); this imports the framework.

Which backends exist, and what each can do, is :mod:`nnc.backends.registry`'s to
say; the functions here are its short forms. Backends are imported lazily, by name,
so that ``nnc check`` never pays for them.
"""

from __future__ import annotations

from types import ModuleType

from nnc.backends.registry import BACKENDS, BackendSpec, backends, parse_backend


def backend_name(name: str) -> str:
    """The canonical name of a backend given by name or alias."""
    return parse_backend(name).name


def get_backend(name: str) -> ModuleType:
    """The backend module (emit/build); importing it never imports its framework."""
    return parse_backend(name).load()


def framework_available(name: str) -> bool:
    """Whether the framework a backend runs on is installed (without importing it)."""
    return parse_backend(name).available()


def require_framework(name: str) -> None:
    """Raise a clear error when a backend's framework is missing."""
    parse_backend(name).require()


def installed_backends() -> list[str]:
    return [b.name for b in backends(installed=True)]


__all__ = [
    "BACKENDS",
    "BackendSpec",
    "backend_name",
    "backends",
    "framework_available",
    "get_backend",
    "installed_backends",
    "parse_backend",
    "require_framework",
]
