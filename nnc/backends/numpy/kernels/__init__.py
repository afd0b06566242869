"""The shared kernels of generated NumPy modules.

Each kernel is an ordinary function in one of these modules, so it is linted,
type-checked and unit-tested like the rest of nnc; the code generator copies its
source (``inspect.getsource``) into a generated module when, and only when, the
module uses it. A kernel may call other kernels: they are found from the names its
code refers to and emitted with it. Kernels use only ``np`` (NumPy) and builtins.
"""

from __future__ import annotations

import dis
import inspect
import types
from collections.abc import Callable, Iterable
from typing import Any

from nnc.backends.numpy.kernels import (
    attention,
    conv,
    core,
    layout,
    linalg,
    losses,
    norm,
    pool,
    positions,
    recurrent,
    reduce,
    resample,
    windows,
)

_MODULES = (
    attention,
    core,
    losses,
    conv,
    pool,
    norm,
    recurrent,
    reduce,
    resample,
    layout,
    windows,
    linalg,
    positions,
)


def _collect() -> dict[str, Callable[..., Any]]:
    found: dict[str, Callable[..., Any]] = {}
    for module in _MODULES:
        for name in module.__all__:
            found[name] = getattr(module, name)
    return found


KERNELS: dict[str, Callable[..., Any]] = _collect()


def global_names(code: types.CodeType) -> set[str]:
    """The global names a function's code loads (nested code included)."""
    names = {
        ins.argval
        for ins in dis.get_instructions(code)
        if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME")
    }
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= global_names(const)
    return names


def dependencies(name: str) -> list[str]:
    """The kernels that ``name`` calls, directly or not (``name`` excluded)."""
    seen: list[str] = []
    stack = [name]
    while stack:
        current = stack.pop()
        for ref in sorted(global_names(KERNELS[current].__code__)):
            if ref in KERNELS and ref != name and ref not in seen:
                seen.append(ref)
                stack.append(ref)
    return seen


def closure(names: Iterable[str]) -> list[str]:
    """``names`` and every kernel they need, in the registry's (stable) order."""
    wanted: set[str] = set()
    for name in names:
        if name not in KERNELS:
            raise KeyError(f"unknown kernel '{name}'")
        wanted.add(name)
        wanted.update(dependencies(name))
    return [name for name in KERNELS if name in wanted]


def source(name: str) -> str:
    """The kernel's source text, dedented, without a trailing newline."""
    return inspect.getsource(KERNELS[name]).rstrip("\n")


__all__ = ["KERNELS", "closure", "dependencies", "global_names", "source"]
