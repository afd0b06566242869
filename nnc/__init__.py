"""nnc: a compiler for a small declarative language of neural networks.

>>> import nnc
>>> program = nnc.parse("model Xor { input x: [2]  dense(5) sigmoid  dense(1) sigmoid }")
>>> nnc.count_params(program, "Xor")
21
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nnc._version import __version__
from nnc.ir import display as _display

# The public API, imported on first use: `import nnc` (and every `nnc` command, whose
# modules live in this package) stays cheap, and `nnc check` never pays for the
# rewrite engine, the builder or the backends. Name -> (module, attribute).
_LAZY: dict[str, tuple[str, str | None]] = {
    "passes": ("nnc.passes", None),
    "rewrite": ("nnc.rewrite", None),
    "build": ("nnc.api", "build"),
    "emit": ("nnc.api", "emit"),
    "fit": ("nnc.api", "fit"),
    "gan_runtime": ("nnc.api", "gan_runtime"),
    "runtime": ("nnc.api", "runtime"),
    "Builder": ("nnc.builder", "Builder"),
    "ProgramBuilder": ("nnc.builder", "ProgramBuilder"),
    "Tensor": ("nnc.builder", "Tensor"),
    "block": ("nnc.builder", "block"),
    "format": ("nnc.dsl", "format_program"),
    "format_source": ("nnc.dsl", "format_source"),
    "load": ("nnc.dsl", "load"),
    "parse": ("nnc.dsl", "parse"),
    "NncError": ("nnc.errors", "NncError"),
    "check": ("nnc.ir.passes", "check"),
    "count_params": ("nnc.ir.passes", "count_params"),
    "infer_shapes": ("nnc.ir.passes", "infer_shapes"),
    "model_params": ("nnc.ir.passes", "model_params"),
    "validate": ("nnc.ir.passes", "validate"),
    "Model": ("nnc.ir.program", "Model"),
    "Program": ("nnc.ir.program", "Program"),
    "RunOptions": ("nnc.train.options", "RunOptions"),
    "loads_json": ("nnc.ir.serialize", "loads_json"),
}

if TYPE_CHECKING:
    from nnc import passes, rewrite
    from nnc.api import build, emit, fit, gan_runtime, runtime
    from nnc.builder import Builder, ProgramBuilder, Tensor, block
    from nnc.dsl import format_program as format
    from nnc.dsl import format_source, load, parse
    from nnc.errors import NncError
    from nnc.ir.passes import check, count_params, infer_shapes, model_params, validate
    from nnc.ir.program import Model, Program
    from nnc.ir.serialize import loads_json
    from nnc.train.options import RunOptions


def _notebook_repr(name: str, obj: Any) -> str | None:
    """A repr of a Program or Model from the notebook layer, imported on first use."""
    from nnc.notebook import reprs

    show: Any = getattr(reprs, name)
    return show(obj)


# The IR shows itself in Jupyter through this hook; only the root wires it to the
# notebook layer, so no IR module imports display code (tests/structure/test_imports.py).
_display.register(_notebook_repr)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'nnc' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = importlib.import_module(module)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value  # once found, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "Builder",
    "Model",
    "NncError",
    "Program",
    "ProgramBuilder",
    "RunOptions",
    "Tensor",
    "__version__",
    "block",
    "build",
    "check",
    "count_params",
    "emit",
    "fit",
    "format",
    "format_source",
    "gan_runtime",
    "infer_shapes",
    "load",
    "loads_json",
    "model_params",
    "parse",
    "passes",
    "rewrite",
    "runtime",
    "validate",
]
