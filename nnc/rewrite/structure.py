"""Standard passes that change a network's structure: freeze layers, change the input
shape, rename, extract a sub-model, insert a layer.

Each works on one model: ``model``, or the program's trained (or only) model; the
weights, when given, are that model's, and come back rewritten with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from nnc.builder import make_node
from nnc.errors import (
    ArgumentError,
    NameResolutionError,
    RecipeError,
    RewriteError,
    did_you_mean,
)
from nnc.ir.graph import base_name
from nnc.ir.ops import Node
from nnc.ir.ops.graph import Call
from nnc.ir.passes import check
from nnc.ir.program import Input, Model, Program
from nnc.ir.training import CdRecipe, GanRecipe, Recipe
from nnc.rewrite.engine import (
    Context,
    LogEntry,
    Rewritten,
    WeightState,
    finish,
    rewrite,
    start,
)

if TYPE_CHECKING:
    import numpy as np

Weights = Mapping[str, "np.ndarray"]


# -- freeze -----------------------------------------------------------------------------


def freeze(
    program: Program,
    nodes: str | Iterable[str],
    weights: Weights | None = None,
    *,
    model: str | None = None,
    trainable: bool = False,
) -> Rewritten:
    """Set ``trainable = false`` on the chosen nodes (names, or globs such as
    ``residual_1_*``, which pick the nodes with parameters); every backend then leaves
    their parameters alone in training. ``trainable=True`` unfreezes.

    >>> import nnc
    >>> p, _ = freeze(nnc.load("examples/mlp_4_5_5_3.nn"), ["dense_1", "dense_2"])
    >>> nnc.count_params(p, "Mlp", trainable_only=True)
    18
    """
    program = _checked(program)
    m = program.model(model)
    chosen = _select(m, [nodes] if isinstance(nodes, str) else list(nodes), "freeze")

    def set_trainable(node: Node, ctx: Context) -> Node | None:
        if node.name not in chosen:
            return None
        return node.model_copy(update={"trainable": trainable})

    return rewrite(program, set_trainable, model=m.name, weights=weights, name="freeze")


def _select(m: Model, patterns: list[str], source: str) -> set[str]:
    chosen: set[str] = set()
    for pattern in patterns:
        found = [n for n in m.nodes if fnmatchcase(n.name, pattern)]
        if not found:
            raise NameResolutionError(
                f"{source}: model '{m.name}' has no node matching '{pattern}'",
                hint=did_you_mean(pattern, [n.name for n in m.nodes]),
            )
        exact = [n for n in found if n.name == pattern]
        for node in exact:
            if isinstance(node, Call):
                raise RewriteError(
                    f"{source}: '{node.name}' calls model '{node.model}'; its parameters "
                    "belong to that model's nodes",
                    hint=f"{source} the nodes of '{node.model}' with model='{node.model}'",
                )
            if not node.has_params:
                raise RewriteError(
                    f"{source}: node '{node.name}' ({node.op}) has no parameters. "
                    f"Nodes with parameters: {', '.join(n.name for n in m.nodes if n.has_params)}"
                )
        chosen |= {n.name for n in found if n.has_params}
    return chosen


# -- change the input shape -------------------------------------------------------------


def set_input_shape(
    program: Program,
    shape: Sequence[int | str],
    weights: Weights | None = None,
    *,
    model: str | None = None,
    input: str | None = None,
) -> Rewritten:
    """Declare a new per-sample shape for an input (the only one unless ``input`` is
    given) and infer every shape again. Weights still fit when no parameter shape
    depends on it (convolutions, recurrent layers); when one does, it is an error.
    So is a recipe whose data no longer fits (see :func:`drop_recipes`).

    >>> import nnc
    >>> p, _ = set_input_shape(nnc.load("examples/sequence_lstm.nn"), [20, 1])
    >>> p.model().inputs[0].type.shape, p.model().node("lstm_1").type.shape
    ((20, 1), (16,))
    """
    program, state = start(program, weights, model)
    m = program.model(model)
    if input is None:
        if len(m.inputs) != 1:
            raise ArgumentError(
                f"set_input_shape: model '{m.name}' has {len(m.inputs)} inputs; name one with "
                f"input=. Inputs: {', '.join(i.name for i in m.inputs)}"
            )
        input = m.inputs[0].name
    if input not in {i.name for i in m.inputs}:
        raise NameResolutionError(
            f"set_input_shape: model '{m.name}' has no input '{input}'",
            hint=did_you_mean(input, [i.name for i in m.inputs]),
        )
    for d in shape:
        if isinstance(d, bool) or not (
            (isinstance(d, int) and d > 0) or (isinstance(d, str) and d.isidentifier())
        ):
            raise ArgumentError(
                f"set_input_shape: a dim must be a positive integer or a symbol. Received: {d!r}"
            )
    inputs = tuple(
        i.model_copy(update={"type": i.type.with_shape(tuple(shape))}) if i.name == input else i
        for i in m.inputs
    )
    changed = _replace_model(program, m.model_copy(update={"inputs": inputs}))
    try:
        check(changed)
    except RecipeError as err:
        raise RewriteError(
            f"set-input-shape: {err.message}",
            err.span,
            hint="for an inference-only program, drop its recipes first (drop_recipes)",
        ) from None
    program = finish(changed, "set-input-shape")
    log = [LogEntry("set-input-shape", m.name, (input,))]
    return Rewritten(program, state.weights(program, "set-input-shape") if state else None, log)


def drop_recipes(
    program: Program, weights: Weights | None = None, *, model: str | None = None
) -> Rewritten:
    """Remove the training recipes (of ``model``, or all): an inference-only program.

    >>> import nnc
    >>> drop_recipes(nnc.load("examples/xor.nn")).program.recipes
    {}
    """
    program, state = start(program, weights, model)
    kept = (
        {}
        if model is None
        else {k: r for k, r in program.recipes.items() if program.model(model).name not in r.models}
    )
    log = [LogEntry("drop-recipes", k, (k,)) for k in program.recipes if k not in kept]
    for k, r in kept.items():  # a kept recipe no longer pretrains with a dropped one
        if isinstance(r, Recipe) and r.pretrain is not None and r.pretrain not in kept:
            kept[k] = r.model_copy(update={"pretrain": None})
    program = finish(program.model_copy(update={"recipes": kept}), "drop-recipes")
    return Rewritten(program, state.weights(program, "drop-recipes") if state else None, log)


# -- rename -----------------------------------------------------------------------------


def rename(
    program: Program,
    nodes: Mapping[str, str] | None = None,
    weights: Weights | None = None,
    *,
    models: Mapping[str, str] | None = None,
    model: str | None = None,
) -> Rewritten:
    """Rename nodes and inputs of a model (``nodes={"dense_1": "hidden"}``; readers,
    outputs and weight names follow) and models (``models={"Mlp": "Iris"}``; calls and
    recipes follow).

    >>> import nnc
    >>> from nnc.ir.weights import init_weights
    >>> p = nnc.load("examples/xor.nn")
    >>> q, w = rename(p, {"dense_1": "hidden", "x": "bits"}, init_weights(p, "Xor"),
    ...               models={"Xor": "XorNet"})
    >>> sorted(w)
    ['dense_2.bias', 'dense_2.weight', 'hidden.bias', 'hidden.weight']
    >>> q.models["XorNet"].node("dense_2").inputs[0] != "dense_1", q.recipes["Xor"].model
    (True, 'XorNet')
    """
    program = _checked(program)
    m = program.model(model)
    nodes = dict(nodes or {})
    inputs = {k: v for k, v in nodes.items() if k in {i.name for i in m.inputs}}
    known = {i.name for i in m.inputs} | {n.name for n in m.nodes}
    for old in nodes:
        if old not in known:
            raise NameResolutionError(
                f"rename: model '{m.name}' has no node or input '{old}'",
                hint=did_you_mean(old, known),
            )

    after = [nodes.get(n, n) for n in known]
    clash = sorted({n for n in after if after.count(n) > 1})
    if clash:
        raise RewriteError(
            f"rename: two values of model '{m.name}' would be named '{clash[0]}'",
            hint="rename the value that has that name too, or choose another name",
        )

    def new_name(node: Node, ctx: Context) -> Node | None:
        if node.name not in nodes:
            return None
        return node.model_copy(update={"name": nodes[node.name]})

    result = rewrite(program, new_name, model=m.name, weights=weights, name="rename")
    program = result.program
    if inputs:
        program = finish(_rename_inputs(program, m.name, inputs), "rename")
        result.log += [LogEntry("rename", m.name, (old,)) for old in inputs]
    if models:
        program = finish(_rename_models(program, dict(models)), "rename")
        result.log += [LogEntry("rename", old, (old,)) for old in models]
    result.program = program
    return result


def _rename_inputs(program: Program, model: str, mapping: dict[str, str]) -> Program:
    m = program.models[model]

    def ref(r: str) -> str:
        base, sep, k = r.partition(":")
        return mapping.get(base, base) + sep + k

    renamed = m.model_copy(
        update={
            "inputs": tuple(
                i.model_copy(update={"name": mapping.get(i.name, i.name)}) for i in m.inputs
            ),
            "nodes": tuple(
                n.model_copy(update={"inputs": tuple(map(ref, n.inputs))}) for n in m.nodes
            ),
            "outputs": tuple(map(ref, m.outputs)),
        }
    )
    return _replace_model(program, renamed)


def _rename_models(program: Program, mapping: dict[str, str]) -> Program:
    for old in mapping:
        program.model(old)  # an unknown name is a NameResolutionError with a hint
    models: dict[str, Model] = {}
    for name, m in program.models.items():
        nodes = tuple(
            n.model_copy(update={"model": mapping.get(n.model, n.model)})
            if isinstance(n, Call)
            else n
            for n in m.nodes
        )
        new = mapping.get(name, name)
        models[new] = m.model_copy(update={"name": new, "nodes": nodes})
    recipes: dict[str, Recipe | GanRecipe | CdRecipe] = {}
    for key, r in program.recipes.items():
        if isinstance(r, Recipe | CdRecipe):
            recipes[key] = r.model_copy(update={"model": mapping.get(r.model, r.model)})
        else:
            recipes[key] = r.model_copy(
                update={
                    "generator": mapping.get(r.generator, r.generator),
                    "discriminator": mapping.get(r.discriminator, r.discriminator),
                }
            )
    return program.model_copy(update={"models": models, "recipes": recipes})


# -- extract a sub-model ----------------------------------------------------------------


def extract(
    program: Program,
    start_at: str | Sequence[str],
    end_at: str | Sequence[str],
    weights: Weights | None = None,
    *,
    model: str | None = None,
    name: str | None = None,
) -> Rewritten:
    """The part of a model between named tensors, as a program of its own: its inputs
    are the ``start_at`` values (typed as inferred), its outputs the ``end_at`` values,
    its nodes those in between, with their names (so weight names are unchanged).
    The new model is ``name`` (default ``<Model>Part``); models it calls come along;
    recipes do not.

    >>> import nnc
    >>> p, _ = extract(nnc.load("examples/digits_cnn.nn"), "flatten_1", "dense_2", name="Head")
    >>> m = p.models["Head"]
    >>> [i.name for i in m.inputs], m.inputs[0].type.shape, [n.name for n in m.nodes]
    (['flatten_1'], (128,), ['dense_1', 'relu_3', 'dropout_1', 'dense_2'])
    """
    program, state = start(program, weights, model)
    m = program.model(model)
    starts = [start_at] if isinstance(start_at, str) else list(start_at)
    ends = [end_at] if isinstance(end_at, str) else list(end_at)
    for ref in (*starts, *ends):
        _value_or_error(m, ref)
    by_name = {n.name: n for n in m.nodes}
    needed: set[str] = set()
    pending = [r for r in ends if r not in starts]
    while pending:
        ref = pending.pop()
        base = base_name(ref)
        if base not in by_name:
            raise RewriteError(
                f"extract: the part ending at {', '.join(ends)} reads the model input "
                f"'{base}', which is not among its starts ({', '.join(starts)})",
                hint="add it to the start tensors, or start later",
            )
        if base in needed:
            continue
        needed.add(base)
        pending += [r for r in by_name[base].inputs if r not in starts]
    used = {r for n in needed for r in by_name[n].inputs} | set(ends)
    for s in starts:
        if s not in used:
            raise RewriteError(
                f"extract: nothing between '{s}' and {', '.join(ends)} reads '{s}'",
                hint="is the start after the end?",
            )
    input_names = {s: s.replace(":", "_out") for s in starts}
    new_inputs = []
    for s in starts:
        t = m.value_type(s)
        bad = [d for d in t.shape if isinstance(d, str) and not d.isidentifier()]
        if bad:
            raise RewriteError(
                f"extract: '{s}' has the derived dim {bad[0]}, which an input cannot declare"
            )
        new_inputs.append(Input(name=input_names[s], type=t))

    def as_input(r: str) -> str:
        return input_names.get(r, r)

    part = Model(
        name=name or f"{m.name}Part",
        inputs=tuple(new_inputs),
        nodes=tuple(
            n.model_copy(update={"inputs": tuple(map(as_input, n.inputs))})
            for n in m.nodes
            if n.name in needed
        ),
        outputs=tuple(map(as_input, ends)),
    )
    models = {part.name: part}
    for callee in _callees(program, part):
        if callee in models:
            raise RewriteError(f"extract: name the part something other than '{callee}'")
        models[callee] = program.models[callee]
    extracted = finish(Program(models=models), "extract")
    log = [LogEntry("extract", m.name, tuple(n.name for n in part.nodes))]
    if state is None:
        return Rewritten(extracted, None, log)
    uses = state.instances(program, m.name)
    if len(uses) != 1:
        raise RewriteError(
            f"extract: the weights hold {len(uses)} uses of model '{m.name}'; give the "
            f"weights of '{m.name}' itself"
        )
    # The part holds a subset of the model's nodes, under the same names.
    state.root, state.tree = part.name, uses[0][1]
    return Rewritten(extracted, state.weights(extracted, "extract"), log)


def _callees(program: Program, model: Model) -> list[str]:
    found: list[str] = []
    for node in model.nodes:
        if isinstance(node, Call) and node.model not in found:
            found += [c for c in _callees(program, program.models[node.model]) if c not in found]
            found.append(node.model)
    return found


# -- insert a layer ---------------------------------------------------------------------


def insert_after(
    program: Program,
    after: str,
    layer: str | Node,
    weights: Weights | None = None,
    *,
    model: str | None = None,
    name: str | None = None,
    seed: int = 0,
) -> Rewritten:
    """Insert a layer after a node (or input): everything that read ``after`` reads
    the new layer. ``layer`` is ``.nn`` text (``"dropout(0.5)"``, ``"batchnorm"``)
    or an IR node. It is named ``name``, or ``<op>_<k>`` as the parser would. With
    weights, its parameters are drawn from their initializers with ``seed``, as
    :func:`nnc.ir.weights.init_weights` draws them.

    >>> import nnc
    >>> p, _ = insert_after(nnc.load("examples/xor.nn"), "sigmoid_1", "dropout(0.2)")
    >>> [(n.name, n.inputs[0]) for n in p.model().nodes][1:4]
    [('sigmoid_1', 'dense_1'), ('dropout_1', 'sigmoid_1'), ('dense_2', 'dropout_1')]
    """
    program, state = start(program, weights, model)
    m = program.model(model)
    _value_or_error(m, after)
    if ":" in after or _outputs(m, after) > 1:
        raise RewriteError(
            f"insert_after: '{after}' is a call with several outputs; insert after a "
            "single-output node"
        )
    template = _parse_layer(layer) if isinstance(layer, str) else layer
    new_name = name or Context(program, m).fresh(template.op)
    node = make_node(template.op, new_name, (after,), **template.attributes())
    nodes: list[Node] = []
    if after in {i.name for i in m.inputs}:
        nodes.append(node)
    for n in m.nodes:
        nodes.append(
            n.model_copy(update={"inputs": tuple(new_name if r == after else r for r in n.inputs)})
        )
        if n.name == after:
            nodes.append(node)
    outputs = tuple(new_name if o == after else o for o in m.outputs)
    changed = _replace_model(
        program, m.model_copy(update={"nodes": tuple(nodes), "outputs": outputs})
    )
    program = finish(changed, "insert-after")
    if state is not None:
        _initialise(program, m.name, node, state, seed)
    log = [LogEntry("insert-after", m.name, (after, new_name))]
    return Rewritten(program, state.weights(program, "insert-after") if state else None, log)


def _parse_layer(text: str) -> Node:
    """One layer written as in a ``.nn`` model body, such as ``dropout(0.5)``."""
    from nnc.dsl import parse

    source = f"model Layer {{\n    input x: [1]\n    {text}\n}}\n"
    nodes = parse(source, "<layer>", check=False).models["Layer"].nodes
    if len(nodes) != 1:
        raise ArgumentError(
            f"expected one layer such as 'dropout(0.5)' or 'batchnorm'. Received: {text!r}"
        )
    return nodes[0]


def _initialise(program: Program, model: str, node: Node, state: WeightState, seed: int) -> None:
    import numpy as np

    from nnc.ir.weights import param_seed

    m = program.models[model]
    specs = m.node(node.name).param_specs([m.value_type(r) for r in node.inputs])
    for prefix, tree in state.instances(program, model):
        params = {}
        for spec in specs:
            rng = np.random.default_rng(param_seed(seed, f"{prefix}{node.name}.{spec.name}"))
            value = spec.init.sample(spec.shape, spec.fan_in, spec.fan_out, rng)
            params[spec.name] = np.asarray(value, dtype=np.float32).reshape(spec.shape)
        if params:
            tree.params[node.name] = params


# -- helpers ----------------------------------------------------------------------------


def _checked(program: Program) -> Program:
    return start(program, None, None)[0]


def _replace_model(program: Program, model: Model) -> Program:
    return program.model_copy(update={"models": {**program.models, model.name: model}})


def _value_or_error(m: Model, ref: str) -> None:
    known = {i.name for i in m.inputs} | {n.name for n in m.nodes}
    if base_name(ref) not in known:
        raise NameResolutionError(
            f"model '{m.name}' has no value '{ref}'", hint=did_you_mean(ref, known)
        )
    try:
        m.value_type(ref)
    except IndexError:
        raise NameResolutionError(f"model '{m.name}' has no value '{ref}'") from None


def _outputs(m: Model, ref: str) -> int:
    for n in m.nodes:
        if n.name == ref:
            return len(n.outs)
    return 1


__all__ = ["drop_recipes", "extract", "freeze", "insert_after", "rename", "set_input_shape"]
