"""The pass manager: run rewrites in sequence, verifying the IR after each.

A pass is a registered name (``"fold-batchnorm"``), a :class:`Pass` with options
(``passes.get("replace-activation", old="relu", new="gelu")``), or any callable
``fn(program, weights, model=None)`` returning a
:class:`~nnc.rewrite.engine.Rewritten` (or a Program, when it leaves weights alone).
With ``verify_each`` (the default), the program is checked after every pass, and so
are the weights against it; a pass that breaks either is reported by name.

>>> import nnc
>>> from nnc import passes
>>> result = passes.run(nnc.load("examples/resnet_block.nn"),
...                     ["fold-batchnorm", get("replace-activation", old="relu", new="gelu")])
>>> sorted({n.op for n in result.program.model().nodes})
['add', 'conv2d', 'dense', 'gelu', 'global_avg_pool']
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nnc.errors import ArgumentError, NameResolutionError, NncError, RewriteError, did_you_mean
from nnc.ir.passes import check
from nnc.ir.program import Program
from nnc.rewrite import (
    drop_recipes,
    extract,
    fold_batchnorm,
    freeze,
    insert_after,
    rename,
    replace_activation,
    replace_head,
    set_input_shape,
    strip_dropout,
)
from nnc.rewrite.engine import Rewritten, weights_model

if TYPE_CHECKING:
    import numpy as np

Weights = Mapping[str, "np.ndarray"]
PassFn = Callable[..., Any]


@dataclass(frozen=True)
class PassInfo:
    """A registered pass: its function, what it does, and its options.

    ``options`` maps each option to its kind, which says how ``nnc opt`` reads it:
    ``name``, ``names`` (``a`` or ``[a, b]``), ``shape`` (``[1, 16, 16]``), ``int``,
    ``layer`` (``.nn`` text such as ``dropout(0.5)``), ``mapping`` (on the command
    line, every ``old=new`` pair) and ``attrs`` (further ``key=value`` pairs passed on).
    """

    name: str
    function: PassFn
    summary: str
    options: dict[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()


def _rename_any(
    program: Program,
    weights: Weights | None = None,
    *,
    model: str | None = None,
    names: Mapping[str, str] | None = None,
) -> Rewritten:
    """``rename`` with one mapping whose keys are model names or node/input names."""
    names = dict(names or {})
    models = {k: v for k, v in names.items() if k in program.models}
    nodes = {k: v for k, v in names.items() if k not in program.models}
    return rename(program, nodes, weights, models=models, model=model)


REGISTRY: dict[str, PassInfo] = {
    info.name: info
    for info in (
        PassInfo(
            "strip-dropout", strip_dropout, "remove dropout nodes (the identity at inference)"
        ),
        PassInfo(
            "fold-batchnorm",
            fold_batchnorm,
            "fold each batchnorm into the conv/dense before it (weights rewritten)",
        ),
        PassInfo(
            "replace-activation",
            replace_activation,
            "replace one activation by another everywhere",
            {"old": "name", "new": "name", "*": "attrs"},
            ("old", "new"),
        ),
        PassInfo(
            "freeze",
            freeze,
            "set trainable = false on nodes (names or globs)",
            {"nodes": "names"},
            ("nodes",),
        ),
        PassInfo(
            "set-input-shape",
            set_input_shape,
            "declare a new input shape and infer the shapes again",
            {"shape": "shape", "input": "name"},
            ("shape",),
        ),
        PassInfo(
            "rename",
            _rename_any,
            "rename models, nodes and inputs (old=new pairs)",
            {"names": "mapping"},
            ("names",),
        ),
        PassInfo(
            "extract",
            extract,
            "keep the sub-model between two named tensors",
            {"start": "names", "end": "names", "name": "name"},
            ("start", "end"),
        ),
        PassInfo(
            "insert-after",
            insert_after,
            "insert a layer (.nn text) after a node",
            {"after": "name", "layer": "layer", "name": "name", "seed": "int"},
            ("after", "layer"),
        ),
        PassInfo(
            "replace-head",
            replace_head,
            "replace the last dense layer by a fresh dense(classes), keeping every other weight",
            {"classes": "int", "node": "name", "seed": "int"},
            ("classes",),
        ),
        PassInfo("drop-recipes", drop_recipes, "remove the training recipes (inference only)"),
    )
}

# Python names of options whose CLI spelling differs.
_KEYWORDS = {("extract", "start"): "start_at", ("extract", "end"): "end_at"}


@dataclass(frozen=True)
class Pass:
    """A registered pass with its options, ready to run."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def __call__(
        self, program: Program, weights: Weights | None = None, *, model: str | None = None
    ) -> Rewritten:
        info = REGISTRY[self.name]
        kwargs = {_KEYWORDS.get((self.name, k), k): v for k, v in self.options.items()}
        return info.function(program, weights=weights, model=model, **kwargs)


def get(name: str, /, **options: Any) -> Pass:
    """A registered pass with options: ``get("freeze", nodes=["dense_1"])``."""
    info = REGISTRY.get(name)
    if info is None:
        raise NameResolutionError(
            f"unknown pass '{name}'. Passes: {', '.join(REGISTRY)}",
            hint=did_you_mean(name, REGISTRY),
        )
    if "*" not in info.options:
        for key in options:
            if key not in info.options:
                raise ArgumentError(
                    f"pass '{name}' has no option '{key}'. Options: "
                    f"{', '.join(info.options) or 'none'}",
                    hint=did_you_mean(key, info.options),
                )
    missing = [k for k in info.required if k not in options]
    if missing:
        raise ArgumentError(f"pass '{name}' needs option(s) {', '.join(missing)}")
    return Pass(name, options)


def run(
    program: Program,
    passes: Sequence[str | Pass | PassFn],
    *,
    weights: Weights | None = None,
    model: str | None = None,
    verify_each: bool = True,
) -> Rewritten:
    """Run ``passes`` in order; ``weights`` (of ``model`` or the trained/only model)
    are rewritten along. With ``verify_each``, the program is checked after every
    pass, and so are the weights against it; a failure names the pass."""
    program = check(program)
    log = []
    for item in passes:
        fn, name = _resolve(item)
        result = _as_rewritten(fn(program, weights, model=model), weights, name)
        if verify_each:
            _verify(result, name, weights is not None, model)
        program, weights = result.program, result.weights
        log += result.log
    return Rewritten(program, dict(weights) if weights is not None else None, log)


def describe() -> str:
    """The registered passes and their options (for ``nnc opt --help``)."""
    lines = []
    for info in REGISTRY.values():
        opts = [
            f"{k}=<{kind}>" for k, kind in info.options.items() if kind not in ("attrs", "mapping")
        ]
        if "mapping" in info.options.values():
            opts.append("OLD=NEW,...")
        if "attrs" in info.options.values():
            opts.append("[ATTR=VALUE,...]")
        head = info.name + (":" + ",".join(opts) if opts else "")
        lines.append(f"  {head}\n      {info.summary}")
    return "\n".join(lines)


def _resolve(item: str | Pass | PassFn) -> tuple[PassFn, str]:
    if isinstance(item, str):
        return get(item), item
    if isinstance(item, Pass):
        return item, item.name
    if not callable(item):
        raise ArgumentError(f"a pass is a name, a Pass or a function. Received: {item!r}")
    target = item.func if isinstance(item, functools.partial) else item
    return item, getattr(target, "__name__", type(item).__name__)


def _as_rewritten(result: Any, weights: Weights | None, name: str) -> Rewritten:
    if isinstance(result, Rewritten):
        return result
    if isinstance(result, Program):
        return Rewritten(result, dict(weights) if weights is not None else None)
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], Program):
        return Rewritten(result[0], result[1])
    raise RewriteError(
        f"pass '{name}' returned {type(result).__name__}; a pass returns a Program or a Rewritten"
    )


def _verify(result: Rewritten, name: str, had_weights: bool, model: str | None) -> None:
    try:
        program = check(result.program)
    except NncError as err:
        raise RewriteError(
            f"pass '{name}' produced invalid IR: {err.message}", err.span, hint=err.hint
        ) from None
    if not had_weights:
        return
    if result.weights is None:
        raise RewriteError(f"pass '{name}' was given weights but returned none")
    from nnc.ir.weights import check_weights

    try:
        owner = weights_model(program, result.weights, model)
        check_weights(program, owner, result.weights, source="its weights")
    except NncError as err:
        raise RewriteError(
            f"pass '{name}' produced weights that do not fit: {err.message}"
        ) from None


__all__ = ["REGISTRY", "Pass", "PassInfo", "describe", "get", "run"]
