"""Where a deviation starts: the first layer, parameter or optimizer slot.

- forward: :func:`first_deviating_layer` runs the model cut after each node in turn
  (topological order) and names the first node whose output deviates;
- gradients: :func:`first_deviating_backward` trains the model cut after each node
  (an mse loss on that node's output) and names the first node whose cut model's
  parameter gradients deviate: the layer whose backward pass (or gradient
  conversion) is wrong, even when it has no parameters of its own;
- after training: the forward pass and gradients agree, so the optimizer's update or
  the state it keeps deviates; the worst tensor is named with its layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nnc.errors import BackendError
from nnc.ir.graph import base_name
from nnc.ir.passes import check
from nnc.ir.passes.inline import inline_calls
from nnc.ir.passes.params import model_params
from nnc.ir.program import Program
from nnc.ir.training import DataFile, Mse, Recipe, Sgd
from nnc.verify.tolerance import Tolerance, deviation

if TYPE_CHECKING:
    from nnc.verify.cases import Case, Row, Run
    from nnc.verify.compare import Noise


def diagnose(
    row: Row, backend: str, case: Case, tol: Tolerance, got: Run, ref: Run, noise: Noise
) -> None:
    """Fill ``row.first_bad_layer`` and ``row.diagnosis`` for a failing backend."""
    program, model = case.program, case.model
    if row.forward.max_rel > tol.forward:
        row.first_bad_layer = first_deviating_layer(backend, case, tol)
        where = row.first_bad_layer or "no single layer (only the full model deviates)"
        row.diagnosis.append(f"forward: first deviating layer: {where}")
        return
    if row.gradients is not None and row.gradients.max_rel > tol.gradient:
        worst = describe(program, model, row.gradients.where)
        row.diagnosis.append(
            f"gradients: worst {worst}: max abs {row.gradients.max_abs:.3g}, "
            f"max rel {row.gradients.max_rel:.3g}"
        )
        layer = first_deviating_backward(backend, case, tol)
        row.first_bad_layer = layer
        row.diagnosis.append(
            f"gradients: first layer whose backward pass deviates: {layer}"
            if layer
            else "gradients: every layer's backward pass agrees under an mse loss, so the "
            f"gradient of the loss ({_loss_kind(program)}) deviates"
        )
        return
    if row.training is not None and row.training.max_rel > tol.training:
        worst = describe(program, model, row.training.where)
        row.diagnosis.append(
            f"after {len(case.lrs)} steps: worst {worst}: max abs {row.training.max_abs:.3g}, "
            f"max rel {row.training.max_rel:.3g}; the forward pass and gradients agree, so "
            f"the optimizer ({_optimizer_kind(program)}) update or its state deviates"
        )


def describe(program: Program, model: str, tensor: str) -> str:
    """A tensor of a report named with its layer: a parameter or buffer, an optimizer
    state slot (``<param>.<slot>``), a model output, or the loss."""
    owners = {p.name: p for p in model_params(program, model)}
    ops = {n.name: n.op for n in inline_calls(program, model).nodes}
    name, _, rest = tensor.partition(" ")
    if name in owners:
        p = owners[name]
        kind = "buffer" if p.spec.buffer else "parameter"
        return f"{name} ({kind} '{p.spec.name}' of layer {p.node}, {ops.get(p.node, '?')})"
    param, _, slot = name.rpartition(".")
    if param in owners:
        p = owners[param]
        return (
            f"{name} (optimizer slot '{slot}' of parameter '{p.spec.name}' of layer {p.node}, "
            f"{ops.get(p.node, '?')})"
        )
    if name == "loss":
        return "the training losses"
    return tensor if not rest else f"{name} {rest}"


def first_deviating_layer(backend: str, case: Case, tol: Tolerance) -> str | None:
    """The first node, in topological order, whose output on ``backend`` deviates from
    the reference by more than the forward tolerance."""
    from nnc.verify.cases import REFERENCE, Case, run

    m = case.program.models[case.model]
    fed = _fed_by_inputs(program=case.program, model=case.model)
    for node in m.nodes:
        if node.name not in fed:
            continue  # a param or constant: no model outputs it alone (nnc check)
        for k in range(max(len(node.outs), 1)):
            ref_name = node.name if k == 0 else f"{node.name}:{k}"
            probe = _probe(case.program, case.model, ref_name)
            sub = Case(probe, case.model, case.weights, case.batches, case.lrs)
            try:
                got = run(backend, sub, train=False).outputs
                ref = run(REFERENCE, sub, train=False).outputs
            except BackendError as exc:
                return f"{node.name} ({node.op}): {exc}"
            d = deviation(got, ref)
            if d.max_rel > tol.forward:
                return f"{node.name} ({node.op}): max abs {d.max_abs:.3g}, max rel {d.max_rel:.3g}"
    return None


def first_deviating_backward(backend: str, case: Case, tol: Tolerance) -> str | None:
    """The first node, in topological order, such that the model cut after it, with
    an mse loss on its output, has parameter gradients that deviate: that node's
    backward pass is the first to go wrong."""
    from nnc.verify.cases import BATCH, REFERENCE, Case, run, static_shape
    from nnc.verify.compare import Noise, gradient_deviation

    program, model = case.program, case.model
    rng = np.random.default_rng(1)
    fed = _fed_by_inputs(program, model)
    for node in program.models[model].nodes:
        if node.name not in fed:
            continue  # a param or constant (its gradient shows at the node reading it)
        cut = _cut(program, model, node.name)
        params = model_params(cut, model)
        if not any(p.spec.trainable and not p.spec.buffer for p in params):
            continue
        shape = (BATCH, *static_shape(node.type.shape))
        target = rng.normal(size=shape).astype(np.float32)
        names = {p.name for p in params}
        weights = {k: v for k, v in case.weights.items() if k in names}
        sub = Case(cut, model, weights, [(case.inputs, target)], [])
        try:
            got = run(backend, sub).gradients
            ref = run(REFERENCE, sub)
        except BackendError as exc:
            return f"{node.name} ({node.op}): {exc}"
        d = gradient_deviation(got, ref.gradients, Noise.of(cut, model, ref, 0.0))
        if d.max_rel > tol.gradient:
            worst = describe(program, model, d.where)
            return (
                f"{node.name} ({node.op}): gradient of {worst}: max abs {d.max_abs:.3g}, "
                f"max rel {d.max_rel:.3g}"
            )
    return None


def _fed_by_inputs(program: Program, model: str) -> set[str]:
    """The nodes of ``model`` that read one of its inputs, through any path: a model cut
    after any other node (a ``param``, a ``constant``, arithmetic of those alone) would
    compute its output from parameters only, which ``nnc check`` refuses."""
    m = program.models[model]
    reached = {decl.name for decl in m.inputs}
    for node in m.nodes:  # topological
        if any(base_name(r) in reached for r in node.inputs):
            reached.add(node.name)
    return reached


def _probe(program: Program, model: str, output: str) -> Program:
    """The program with ``model`` outputting ``output`` and no recipe (forward only)."""
    m = program.models[model].model_copy(update={"outputs": (output,)})
    return program.model_copy(update={"models": {**program.models, model: m}, "recipes": {}})


def _cut(program: Program, model: str, node: str) -> Program:
    """The program with ``model`` cut after ``node`` (only the nodes it depends on)
    and trained with mse and plain sgd on its output."""
    m = program.models[model]
    needed = {node}
    for n in reversed(m.nodes):
        if n.name in needed:
            needed |= {base_name(r) for r in n.inputs}
    nodes = tuple(n for n in m.nodes if n.name in needed)
    cut = m.model_copy(update={"nodes": nodes, "outputs": (node,)})
    recipe = Recipe(
        name=f"verify_{model}",
        model=model,
        data=DataFile(path="<synthetic>"),
        loss=Mse(),
        optimizer=Sgd(),
    )
    return check(
        program.model_copy(
            update={"models": {**program.models, model: cut}, "recipes": {recipe.name: recipe}}
        )
    )


def _loss_kind(program: Program) -> str:
    recipe = next(iter(program.recipes.values()))
    return getattr(getattr(recipe, "loss", None), "kind", "?")


def _optimizer_kind(program: Program) -> str:
    recipe = next(iter(program.recipes.values()))
    return getattr(getattr(recipe, "optimizer", None), "kind", "?")
