"""nnc: a compiler for a small declarative language of neural networks.

>>> import nnc
>>> program = nnc.parse("model Xor { input x: [2]  dense(5) sigmoid  dense(1) sigmoid }")
>>> nnc.count_params(program, "Xor")
21
"""

from __future__ import annotations

from nnc import passes, rewrite
from nnc.api import build, emit, gan_runtime, runtime
from nnc.builder import Builder, ProgramBuilder, Tensor, block
from nnc.dsl import format_program as format
from nnc.dsl import format_source, load, parse
from nnc.errors import NncError
from nnc.ir.passes import check, count_params, infer_shapes, model_params, validate
from nnc.ir.program import Model, Program
from nnc.ir.serialize import loads_json

__version__ = "0.1.0"

__all__ = [
    "Builder",
    "Model",
    "NncError",
    "Program",
    "ProgramBuilder",
    "Tensor",
    "__version__",
    "block",
    "build",
    "check",
    "count_params",
    "emit",
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
