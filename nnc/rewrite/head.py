"""Replace a classifier's head: the last dense layer before the output gets a new
size and fresh weights, for fine-tuning an imported or trained network on new classes.

The head is found by walking back from the model's output through the nodes without
parameters that read one value (softmax, dropout, flatten, ...): the first node with
parameters it reaches must be a ``dense``. That dense is replaced by a new one of
``classes`` units under the same name (so its weights keep their names,
``<dense>.weight`` and ``<dense>.bias``), trainable, with nnc's default initializers,
its tensors drawn as :func:`nnc.ir.weights.init_weights` draws them. Every other node
and tensor is kept as it is, frozen or not; the nodes after the head (a softmax, say)
stay.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from nnc.errors import (
    ArgumentError,
    NameResolutionError,
    NncError,
    RecipeError,
    RewriteError,
    did_you_mean,
)
from nnc.ir.graph import base_name
from nnc.ir.ops import Node
from nnc.ir.ops.dense import Dense
from nnc.ir.ops.graph import Call
from nnc.ir.passes import check
from nnc.ir.program import Model, Program
from nnc.rewrite.engine import Context, Edit, LogEntry, Replacement, Rewritten, apply_edits, start
from nnc.rewrite.weights import NodeWeights

if TYPE_CHECKING:
    import numpy as np

Weights = Mapping[str, "np.ndarray"]


def replace_head(
    program: Program,
    classes: int,
    weights: Weights | None = None,
    *,
    model: str | None = None,
    node: str | None = None,
    seed: int = 0,
) -> Rewritten:
    """Replace the model's last dense layer (or ``node``) by a fresh ``dense(classes)``.

    The model is ``model``, or the trained (or only) one. With weights, the new
    layer's tensors are drawn from nnc's initializers with ``seed`` (Glorot-uniform
    weight, zero bias, seeded by the parameter's name as ``init_weights`` does) and
    every other tensor comes back bitwise unchanged. A model whose output does not
    come from a dense layer (a convolutional head, say) is a :class:`RewriteError`
    that names what the output comes from.

    >>> import nnc
    >>> from nnc.rewrite import drop_recipes
    >>> p, _ = replace_head(drop_recipes(nnc.load("examples/mlp_4_5_5_3.nn")).program, 7)
    >>> p.model().node("dense_3").units, nnc.count_params(p, "Mlp")
    (7, 97)
    """
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise ArgumentError(
            f"replace_head: classes must be a positive integer. Received: {classes!r}"
        )
    program, state = start(program, weights, model)
    m = program.model(model)
    head = _chosen(m, node) if node is not None else find_head(m)
    new = Dense(
        name=head.name,
        inputs=head.inputs,
        units=classes,
        bias=head.bias,
        span=head.span,
    )
    ctx = Context(program, m)
    specs = new.param_specs([ctx.type_of(r) for r in new.inputs])

    def fresh(old: NodeWeights, prefix: str) -> NodeWeights:
        import numpy as np

        from nnc.ir.weights import param_seed

        drawn = {}
        for spec in specs:
            rng = np.random.default_rng(param_seed(seed, f"{prefix}{new.name}.{spec.name}"))
            value = spec.init.sample(spec.shape, spec.fan_in, spec.fan_out, rng)
            drawn[spec.name] = np.asarray(value, dtype=np.float32).reshape(spec.shape)
        return {new.name: drawn}

    edit = Edit((head.name,), Replacement(nodes=(new,), weights=fresh))
    changed = apply_edits(program, m.name, [edit], state, "replace-head")
    try:
        changed = check(changed)
    except NncError as err:
        recipe = isinstance(err, RecipeError)
        raise RewriteError(
            f"replace-head: with {classes} classes the program no longer checks: {err.message}",
            err.span,
            hint="drop the old recipe first (drop-recipes) and train with one for the new classes"
            if recipe
            else f"the nodes after '{head.name}' must take any number of classes",
        ) from None
    log = [LogEntry("replace-head", m.name, (head.name,))]
    return Rewritten(changed, state.weights(changed, "replace-head") if state else None, log)


def find_head(m: Model) -> Dense:
    """The dense layer the model's only output comes from, through parameter-free
    single-input nodes; a :class:`RewriteError` that says why when there is none."""
    if len(m.outputs) != 1:
        raise RewriteError(
            f"replace-head: model '{m.name}' has {len(m.outputs)} outputs "
            f"({', '.join(m.outputs)}); name the dense layer to replace",
            hint="replace-head:classes=N,node=NAME",
        )
    by_name = {n.name: n for n in m.nodes}
    ref = m.outputs[0]
    path: list[str] = []  # the nodes walked through, for the error
    while True:
        current = by_name.get(base_name(ref))
        if current is None:
            raise _no_head(m, f"reaches the input '{ref}'", path)
        if isinstance(current, Dense):
            return current
        if isinstance(current, Call):
            raise _no_head(
                m,
                f"comes from the call '{current.name}' of model '{current.model}'",
                path,
                hint=f"replace the head of '{current.model}' with model='{current.model}'",
            )
        if current.has_params or len(current.inputs) != 1:
            what = (
                "is not a dense layer"
                if current.has_params
                else f"reads {len(current.inputs)} values"
            )
            raise _no_head(m, f"comes from {current.op} '{current.name}', which {what}", path)
        path.append(f"{current.op} '{current.name}'")
        ref = current.inputs[0]


def _no_head(m: Model, why: str, path: list[str], hint: str | None = None) -> RewriteError:
    through = f" (through {', '.join(path)})" if path else ""
    return RewriteError(
        f"replace-head: model '{m.name}' has no dense head: its output {why}{through}",
        hint=hint
        or "replace-head replaces a final dense layer; for another head, extract the "
        "backbone (extract) and add layers after it (insert-after)",
    )


def _chosen(m: Model, name: str) -> Dense:
    by_name = {n.name: n for n in m.nodes}
    found: Node | None = by_name.get(name)
    if found is None:
        raise NameResolutionError(
            f"replace-head: model '{m.name}' has no node '{name}'",
            hint=did_you_mean(name, list(by_name)),
        )
    if not isinstance(found, Dense):
        raise RewriteError(
            f"replace-head: node '{name}' is {found.op}, not dense; the head it replaces is "
            "a dense layer",
            found.span,
        )
    return found


__all__ = ["find_head", "replace_head"]
