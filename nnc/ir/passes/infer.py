"""Shape inference: Program -> Program with every node's output types filled in.

It also orders each model's nodes topologically (a cycle is an error naming the
nodes on it), resolves every input reference, checks arities, and types calls of one
model inside another by unifying the callee's declared input shapes with the actual
ones.
"""

from __future__ import annotations

from collections.abc import Mapping

from nnc.errors import (
    ArgumentError,
    GraphError,
    NameResolutionError,
    ResourceError,
    ShapeError,
    did_you_mean,
)
from nnc.ir.graph import callee_first, toposort
from nnc.ir.ops import Node
from nnc.ir.ops.graph import Call
from nnc.ir.program import Input, Model, Program
from nnc.ir.types import Dim, TensorType, unify


def infer_shapes(program: Program) -> Program:
    """Type every node of every model.

    >>> import nnc
    >>> p = nnc.parse("model M { input x: [4]  dense(3) relu }", check=False)
    >>> infer_shapes(p).models["M"].nodes[-1].type
    TensorType(dtype='float32', shape=(3,))
    """
    done: dict[str, Model] = {}
    # Callees first: typing a model then finds every callee typed, and never recurses.
    for name in callee_first(program):
        _infer_model_named(program, name, done, ())
    return program.model_copy(update={"models": {n: done[n] for n in program.models}})


def _infer_model_named(
    program: Program, name: str, done: dict[str, Model], stack: tuple[str, ...]
) -> Model:
    if name in done:
        return done[name]
    model = program.models[name]
    if name in stack:
        chain = " -> ".join((*stack[stack.index(name) :], name))
        raise GraphError(f"model '{name}' calls itself: {chain}", model.span)
    typed = infer_model(model, program, done, (*stack, name))
    done[name] = typed
    return typed


def infer_model(
    model: Model,
    program: Program,
    done: dict[str, Model] | None = None,
    stack: tuple[str, ...] = (),
) -> Model:
    """Type one model (its callees are typed on demand)."""
    done = {} if done is None else done
    env: dict[str, TensorType] = {i.name: i.type for i in model.inputs}
    typed: list[Node] = []
    for node in toposort(model):
        ins = [_lookup(model, env, ref, node) for ref in node.inputs]
        _check_arity(node, len(ins))
        if isinstance(node, Call):
            outs = _call_types(node, ins, program, done, stack)
        else:
            outs = (node.infer(ins),)
            node.param_specs(ins)  # surfaces unresolvable parameter dims at check time
        env[node.name] = outs[0]
        for k, t in enumerate(outs):
            env[f"{node.name}:{k}"] = t
        typed.append(node.model_copy(update={"outs": outs}))
    for out in model.outputs:
        if out not in env:
            raise NameResolutionError(
                f"model '{model.name}' outputs undefined name '{out}'",
                model.span,
                hint=did_you_mean(out, env),
            )
    return model.model_copy(update={"nodes": tuple(typed)})


def _lookup(model: Model, env: Mapping[str, TensorType], ref: str, node: Node) -> TensorType:
    if ref in env:
        return env[ref]
    base, _, index = ref.partition(":")
    if base in env and index:
        raise ShapeError(f"'{base}' has no output {index}", node.span)
    raise NameResolutionError(f"undefined name '{ref}'", node.span, hint=did_you_mean(ref, env))


def _check_arity(node: Node, n: int) -> None:
    want = node.expected_inputs()
    bounds = type(node).arity_range
    if bounds is not None:
        if not bounds[0] <= n <= bounds[1]:
            raise ArgumentError(
                f"{node.op} takes {bounds[0]} to {bounds[1]} inputs. Received: {n}", node.span
            )
    elif want is None:
        if n < 2 and not isinstance(node, Call):
            raise ArgumentError(f"{node.op} needs at least 2 inputs. Received: {n}", node.span)
    elif n != want:
        raise ArgumentError(
            f"{node.op} takes {want} input{'' if want == 1 else 's'}. Received: {n}", node.span
        )


def _call_types(
    node: Call,
    ins: list[TensorType],
    program: Program,
    done: dict[str, Model],
    stack: tuple[str, ...],
) -> tuple[TensorType, ...]:
    if node.model not in program.models:
        raise NameResolutionError(
            f"unknown model '{node.model}'",
            node.span,
            hint=did_you_mean(node.model, program.models),
        )
    callee = _infer_model_named(program, node.model, done, stack)
    if len(ins) != len(callee.inputs):
        raise ArgumentError(
            f"model '{callee.name}' takes {len(callee.inputs)} input(s). Received: {len(ins)}",
            node.span,
        )
    bindings: dict[str, Dim] = {}
    for decl, actual in zip(callee.inputs, ins, strict=True):
        reason = unify(decl.type.shape, actual.shape, bindings)
        if reason or decl.type.dtype != actual.dtype:
            raise ShapeError(
                f"model '{callee.name}' input '{decl.name}' is {decl.type}; received {actual}"
                + (f" ({reason})" if reason else ""),
                node.span,
            )
    if all(d.type == a for d, a in zip(callee.inputs, ins, strict=True)):
        return callee.output_types
    # Symbolic inputs bound to other dims: retype the callee for these inputs, once per
    # distinct input types (a model called twice with the same types is typed once).
    key = _SPECIALISED + callee.name + "(" + ", ".join(repr(t) for t in ins) + ")"
    if key in done:
        return done[key].output_types
    if len(stack) >= MAX_SPECIALISED_DEPTH:
        raise ResourceError(
            f"model calls that retype symbolic inputs nest more than {MAX_SPECIALISED_DEPTH} "
            "deep; give the inner models concrete input shapes",
            node.span,
        )
    specialised = callee.model_copy(
        update={
            "inputs": tuple(
                Input(name=d.name, type=a, span=d.span)
                for d, a in zip(callee.inputs, ins, strict=True)
            )
        }
    )
    typed = infer_model(specialised, program, done, (*stack, callee.name))
    done[key] = typed
    return typed.output_types


# How deep retyping may go (each level is a Python call: stay far below the stack).
MAX_SPECIALISED_DEPTH = 300

# The typing cache holds models by name, and specialisations under a key no model name
# can take (names are identifiers).
_SPECIALISED = "\0"
