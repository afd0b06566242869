"""Assemble a generated PyTorch module: what varies per model, and nothing else.

In order: imports, helpers a layer needs, one ``nn.Module`` per block and per model
(each before its users), and for a supervised recipe the loss (``compute_loss``), the optimizer
(``make_optimizer``), ``learning_rate(epoch)`` when the rate follows a schedule, and
a standalone ``fit(x, y)``. The module imports only torch, numpy and the standard
library; copied anywhere, it trains with ``fit(x, y)``.

Everything that is the same for every model (canonical weights, the Runtime
interface, optimizer state, devices, data-parallel training) is nnc's runtime
adapter, :mod:`nnc.backends.torch.runtime`, which wraps the imported module. What
the adapter needs to know of the model comes from the IR, here: :class:`Lowered`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from nnc.backends.codegen import CodeWriter, emit_learning_rate, header, select
from nnc.backends.pystyle import double_quoted, wrap_long_lines
from nnc.backends.torch.helpers import HELPERS, emit_helpers, helper_imports, helper_names
from nnc.backends.torch.module import MODULE_NAMES, lower_models
from nnc.backends.torch.training import (
    emit_fit,
    emit_l2_table,
    emit_loss,
    emit_optimizer,
    has_schedule,
)
from nnc.ir.ops.normalization import BatchNorm
from nnc.ir.passes import check, inline_calls
from nnc.ir.passes.params import model_params
from nnc.ir.program import Model, Program
from nnc.ir.training import GanRecipe, Recipe

NAME = "torch"
_FUNCTIONAL = re.compile(r"(?<![\w.])F\.")


@dataclass(frozen=True)
class Lowered:
    """A model's generated module and the facts about it that nnc's runtime adapter
    needs, all computed from the IR."""

    source: str
    model: Model
    recipe: Recipe | None
    # why the runtime cannot train (no supervised recipe); "" when it can
    no_training: str
    class_name: str
    parameters: tuple[str, ...]  # canonical names, buffers included, in order
    torch_names: dict[str, str]  # canonical name -> torch's state_dict name
    input_dtypes: tuple[type[np.generic], ...]
    buffers: bool  # running statistics that only train_step may move
    batchnorm: bool  # data-parallel training swaps in GlobalBatchNorm
    trainable: bool  # some parameter is trained


def emit_module(program: Program, model: str | None = None, source: str = "<program>") -> str:
    """The generated module's source for ``model`` (default: the trained model)."""
    return lower_module(program, model, source).source


def lower_module(program: Program, model: str | None = None, source: str = "<program>") -> Lowered:
    """The generated module for ``model`` with what the runtime adapter needs."""
    program = check(program)
    root, recipe = select(program, model)
    taken = set(MODULE_NAMES)
    for helper in HELPERS:
        taken.update(helper_names(helper))
    classes = lower_models(program, root, taken)
    main = classes[-1]
    helpers = set().union(*(c.helpers for c in classes))
    imports = set().union(*(c.imports for c in classes)) | helper_imports(helpers)
    supervised = recipe if isinstance(recipe, Recipe) else None
    params = model_params(program, root)
    trainable = any(p.spec.trainable and not p.spec.buffer for p in params)

    body = CodeWriter()
    if supervised is not None and supervised.l2 and trainable:
        emit_l2_table(body, main.torch_names, params, supervised)
    emit_helpers(body, helpers)
    for cls in classes:
        body.blank(2)
        cls.emit(body)
    if supervised is not None:
        body.blank(2)
        emit_loss(body, supervised.loss, root.output_types[0])
        if trainable:
            body.blank(2)
            emit_optimizer(body, supervised)
            if has_schedule(supervised):
                body.blank(2)
                emit_learning_rate(body, supervised)
        body.blank(2)
        integer = root.inputs[0].type.dtype == "int64"
        emit_fit(body, supervised, main.name, integer, trainable)
    code = body.render()

    w = CodeWriter()
    w.lines_(header(source, root, NAME))
    w.docstring(
        f"{root.name} in PyTorch, computing exactly what nnc's docs/semantics.md defines"
        + (
            ":\nthe model, its loss and optimizer, and fit(x, y) to train it.\n"
            if supervised is not None
            else "."
        )
    )
    w.blank()
    if imports:
        w.lines_([f"import {name}" for name in sorted(imports)])
        w.blank()
    if supervised is not None or re.search(r"(?<![\w.])np\.", code):
        w.line("import numpy as np")
    w.line("import torch")
    if _FUNCTIONAL.search(code):
        w.line("import torch.nn.functional as F")
    w.line("from torch import nn")
    w.blank(1 if code.startswith("#") else 2)  # isort: one blank line before a comment
    w.lines_(code.lstrip("\n").splitlines())
    text = wrap_long_lines(double_quoted(w.render()))
    renamed = {k: v for k, v in main.torch_names.items() if k != v}
    return Lowered(
        source=text,
        model=root,
        recipe=supervised,
        no_training="" if supervised is not None else _no_training(root, recipe),
        class_name=main.name,
        parameters=tuple(p.name for p in params),
        torch_names=renamed,
        input_dtypes=tuple(
            np.int64 if i.type.dtype == "int64" else np.float32 for i in root.inputs
        ),
        buffers=any(p.spec.buffer for p in params),
        batchnorm=any(isinstance(n, BatchNorm) for n in inline_calls(program, root).nodes),
        trainable=trainable,
    )


def _no_training(model: Model, recipe: Recipe | GanRecipe | None) -> str:
    if isinstance(recipe, GanRecipe):
        return (
            f"model {model.name} is trained by the GAN recipe '{recipe.name}', which this "
            "runtime does not run: it trains one model with a supervised loss"
        )
    return (
        f"model {model.name} has no train recipe, so it has no loss or optimizer; compile a "
        "program whose train block names it"
    )
