"""Canonical weights as a tree of model instances, so rewrites can move them.

Flat canonical weights name tensors ``<node>.<param>``, with a call's name in front
of its callee's (``encoder_1.dense_1.weight``). A rewrite works on one model, which
may be used several times (called from two places, say); so the weights are split
into one :class:`Instance` per use of a model, each holding its nodes' tensors and,
per call node, the callee's instance. A rewrite edits every instance of the model it
changes, and the tree is flattened back under the new names.

>>> import nnc
>>> from nnc.ir.weights import init_weights
>>> p = nnc.load("examples/autoencoder.nn")
>>> tree = split(p, "Autoencoder", init_weights(p, "Autoencoder"))
>>> sorted(tree.calls), sorted(tree.calls["encoder_1"].params)
(['decoder_1', 'encoder_1'], ['dense_1', 'dense_2'])
>>> [prefix for prefix, _ in instances(p, "Autoencoder", tree, "Encoder")]
['encoder_1.']
>>> sorted(flatten(p, "Autoencoder", tree)) == sorted(init_weights(p, "Autoencoder"))
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nnc.errors import WeightsError
from nnc.ir.ops.graph import Call
from nnc.ir.program import Model, Program

if TYPE_CHECKING:
    import numpy as np

Weights = dict[str, "np.ndarray"]
NodeWeights = dict[str, dict[str, "np.ndarray"]]  # node -> param -> array


@dataclass
class Instance:
    """The weights of one use of a model: per node its tensors, per call node the
    callee's instance."""

    params: NodeWeights = field(default_factory=dict)
    calls: dict[str, Instance] = field(default_factory=dict)


def split(program: Program, model: Model | str, weights: Weights, prefix: str = "") -> Instance:
    """The flat weights of a checked ``model`` as a tree (they must fit the model:
    see :func:`nnc.ir.weights.check_weights`)."""
    m = program.models[model] if isinstance(model, str) else model
    tree = Instance()
    for node in m.nodes:
        if isinstance(node, Call):
            tree.calls[node.name] = split(program, node.model, weights, f"{prefix}{node.name}.")
            continue
        specs = node.param_specs([m.value_type(ref) for ref in node.inputs])
        if specs:
            tree.params[node.name] = {
                s.name: weights[f"{prefix}{node.name}.{s.name}"] for s in specs
            }
    return tree


def flatten(program: Program, model: Model | str, tree: Instance, prefix: str = "") -> Weights:
    """The flat canonical weights of ``tree`` under the (new) names of ``model``, in the
    order of its parameters. A tensor the model needs but the tree lacks is an error."""
    m = program.models[model] if isinstance(model, str) else model
    out: Weights = {}
    for node in m.nodes:
        if isinstance(node, Call):
            callee = tree.calls.get(node.name)
            if callee is None:
                raise WeightsError(f"no weights for the call '{prefix}{node.name}'")
            out.update(flatten(program, node.model, callee, f"{prefix}{node.name}."))
            continue
        specs = node.param_specs([m.value_type(ref) for ref in node.inputs])
        held = tree.params.get(node.name, {})
        for s in specs:
            if s.name not in held:
                raise WeightsError(f"no weights for '{prefix}{node.name}.{s.name}'")
            out[f"{prefix}{node.name}.{s.name}"] = held[s.name]
    return out


def instances(
    program: Program, root: Model | str, tree: Instance, target: str, prefix: str = ""
) -> list[tuple[str, Instance]]:
    """Every use of model ``target`` inside ``root``'s tree, with its name prefix."""
    m = program.models[root] if isinstance(root, str) else root
    found = [(prefix, tree)] if m.name == target else []
    for node in m.nodes:
        if isinstance(node, Call) and node.name in tree.calls:
            found += instances(
                program, node.model, tree.calls[node.name], target, f"{prefix}{node.name}."
            )
    return found
