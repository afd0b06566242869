"""Assemble a generated PyTorch module: imports, canonical parameters, helpers, one
``nn.Module`` per model, the loss and optimizer, the ``Runtime``, and ``fit``.

The module imports only torch, numpy and the standard library; copied anywhere, it
trains with ``fit(x, y)``.
"""

from __future__ import annotations

import re

from nnc.backends.codegen import (
    CodeWriter,
    emit_fit,
    emit_initial_weights,
    emit_learning_rate,
    emit_parameter_table,
    header,
    select,
)
from nnc.backends.torch.distributed import (
    DISTRIBUTED_NAMES,
    STDLIB_IMPORTS,
    TORCH_IMPORTS,
    emit_distributed,
)
from nnc.backends.torch.helpers import HELPERS, emit_helpers, helper_imports, helper_names
from nnc.backends.torch.module import MODULE_NAMES, lower_models
from nnc.backends.torch.training import (
    RuntimeEmitter,
    emit_loss,
    emit_optimizer,
    emit_tables,
)
from nnc.ir.ops.normalization import BatchNorm
from nnc.ir.passes import check, inline_calls
from nnc.ir.program import Program
from nnc.ir.training import Recipe

NAME = "torch"
_FUNCTIONAL = re.compile(r"(?<![\w.])F\.")


def emit_module(program: Program, model: str | None = None, source: str = "<program>") -> str:
    """The generated module's source for ``model`` (default: the trained model)."""
    program = check(program)
    root, recipe = select(program, model)
    taken = set(MODULE_NAMES | DISTRIBUTED_NAMES)
    for helper in HELPERS:
        taken.update(helper_names(helper))
    classes = lower_models(program, root, taken)
    main = classes[-1]
    helpers = set().union(*(c.helpers for c in classes))
    imports = set().union(*(c.imports for c in classes)) | helper_imports(helpers)
    supervised = recipe if isinstance(recipe, Recipe) else None
    batchnorm = any(isinstance(n, BatchNorm) for n in inline_calls(program, root).nodes)
    if supervised is not None:
        imports |= STDLIB_IMPORTS

    body = CodeWriter()
    params = emit_parameter_table(body, program, root)
    emit_tables(body, main.torch_names, params, supervised)
    body.blank(2)
    emit_initial_weights(body, program, root, supervised.seed if supervised else _seed(recipe))
    emit_helpers(body, helpers)
    for cls in classes:
        body.blank(2)
        cls.emit(body)
    if supervised is not None:
        body.blank(2)
        emit_distributed(body, batchnorm)
        body.blank(2)
        emit_loss(body, supervised.loss, root.output_types[0])
        if any(p.spec.trainable and not p.spec.buffer for p in params):
            body.blank(2)
            emit_optimizer(body, supervised)
    body.blank(2)
    renamed = any(k != v for k, v in main.torch_names.items())
    RuntimeEmitter(body, root, main.name, recipe, params, renamed, batchnorm).emit()
    if supervised is not None:
        body.blank(2)
        emit_learning_rate(body, supervised)
        body.blank(2)
        emit_fit(body, supervised, parallel="torch")
    code = body.render()

    w = CodeWriter()
    w.lines_(header(source, root, NAME))
    w.docstring(
        f"{root.name} in PyTorch, computing exactly what nnc's docs/semantics.md defines.\n\n"
        "Runtime runs it with NumPy arrays in and out and nnc's canonical weights"
        + (
            ";\nfit(x, y) trains it from initial_weights() with the recipe's settings.\n"
            if supervised is not None
            else ".\n"
        )
    )
    w.blank()
    w.lines_([f"import {name}" for name in sorted(imports | {"zlib"})])
    w.blank()
    w.lines_(["import numpy as np", "import torch"])
    if supervised is not None:
        w.line(TORCH_IMPORTS[0])
    if _FUNCTIONAL.search(code):
        w.line("import torch.nn.functional as F")
    w.line("from torch import nn")
    if supervised is not None:
        w.line(TORCH_IMPORTS[1])
    w.blank(2)
    w.lines_(code.splitlines())
    return w.render()


def _seed(recipe: object) -> int:
    return int(getattr(recipe, "seed", 0))
