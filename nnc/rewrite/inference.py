"""Standard passes that prepare a network for inference or swap its activations.

Each takes a program and, optionally, the canonical weights of its trained (or only)
model, or of ``model`` when given, and returns a :class:`~nnc.rewrite.engine.Rewritten`
(``program, weights = pass(program, weights)``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from nnc.builder import make_node
from nnc.errors import ArgumentError, did_you_mean
from nnc.ir.ops import ACTIVATIONS, OPS, Node
from nnc.ir.program import Program
from nnc.rewrite.engine import Context, Replacement, Rewritten, rewrite
from nnc.rewrite.rules import Match, Rule, RuleSet
from nnc.rewrite.weights import NodeWeights

if TYPE_CHECKING:
    import numpy as np


# -- strip dropout ----------------------------------------------------------------------


def _bypass(match: Match) -> str:
    return match.nodes[0].inputs[0]


STRIP_DROPOUT = RuleSet(
    "strip-dropout",
    [Rule("strip-dropout", ("dropout",), _bypass, description="dropout is the identity")],
)


def strip_dropout(
    program: Program, weights: Mapping[str, np.ndarray] | None = None, *, model: str | None = None
) -> Rewritten:
    """Remove every dropout node (the identity at inference); its readers read its input.

    >>> import nnc
    >>> program, _ = strip_dropout(nnc.load("examples/digits_cnn.nn"))
    >>> [n.op for n in program.model().nodes][-3:]
    ['dense', 'relu', 'dense']
    """
    return STRIP_DROPOUT.apply(program, weights, model=model)


# -- fold batchnorm ---------------------------------------------------------------------


def _foldable(match: Match) -> str | None:
    layer, _ = match.nodes
    assert layer.channel_axis is not None  # a folds_batchnorm op
    if layer.channel_axis % layer.type.rank != 0:
        return (
            f"the batchnorm normalises axis 0 of {layer.type} (the sequence axis), "
            f"not the units of '{layer.name}'"
        )
    return None


def _fold(match: Match) -> Replacement:
    layer, bn = match.nodes
    axis = layer.weight_channel_axis
    assert axis is not None  # a folds_batchnorm op
    return Replacement(
        nodes=(layer.model_copy(update={"bias": True}),),
        weights=partial(_fold_weights, layer.name, bn.name, axis, getattr(bn, "eps", 1e-5)),
    )


def _fold_weights(
    layer: str, bn: str, axis: int, eps: float, old: NodeWeights, prefix: str
) -> NodeWeights:
    """``W' = W·s`` and ``b' = (b - μ)·s + β`` per output channel, ``s = γ/√(σ² + eps)``:
    what the batchnorm computes in evaluation, folded into the layer (in float64)."""
    import numpy as np

    w = old[layer]["weight"].astype(np.float64)
    stats = {k: v.astype(np.float64) for k, v in old[bn].items()}
    bias = old[layer].get("bias")
    b = bias.astype(np.float64) if bias is not None else np.zeros_like(stats["bias"])
    scale = stats["weight"] / np.sqrt(stats["running_var"] + eps)
    shape = [1] * w.ndim
    shape[axis] = -1
    return {
        layer: {
            "weight": (w * scale.reshape(shape)).astype(np.float32),
            "bias": ((b - stats["running_mean"]) * scale + stats["bias"]).astype(np.float32),
        }
    }


FOLD_BATCHNORM = RuleSet(
    "fold-batchnorm",
    [
        Rule(
            "fold-batchnorm",
            ("|".join(op for op, cls in OPS.items() if cls.folds_batchnorm), "batchnorm"),
            _fold,
            _foldable,
            description="fold a batchnorm into the conv or dense before it",
        )
    ],
)


def fold_batchnorm(
    program: Program, weights: Mapping[str, np.ndarray] | None = None, *, model: str | None = None
) -> Rewritten:
    """Fold each batchnorm into the conv or dense layer that feeds it (alone), for
    inference: with the weights given, the folded layer computes what the pair
    computes in evaluation mode (running statistics). Without weights only the
    graph changes. Places it cannot fold are in the result's log, with the reason.

    >>> import nnc
    >>> from nnc.ir.weights import init_weights
    >>> p = nnc.load("examples/resnet_block.nn")
    >>> q, w = fold_batchnorm(p, init_weights(p, "ResNet"))
    >>> len(p.model().find("batchnorm")), len(q.model().find("batchnorm"))
    (4, 0)
    >>> q.model().node("residual_1_conv2d_2").bias, w["residual_1_conv2d_2.bias"].shape
    (True, (16,))
    """
    return FOLD_BATCHNORM.apply(program, weights, model=model)


# -- replace an activation --------------------------------------------------------------


def replace_activation(
    program: Program,
    old: str,
    new: str,
    weights: Mapping[str, np.ndarray] | None = None,
    *,
    model: str | None = None,
    **attrs: Any,
) -> Rewritten:
    """Replace every ``old`` activation by ``new`` (with ``attrs``, such as
    ``alpha=0.2``). Auto-named nodes get the new op's name (``relu_2`` becomes
    ``gelu_k``, keeping a block prefix); chosen names are kept.

    >>> import nnc
    >>> p, _ = replace_activation(nnc.load("examples/gan.nn"), "leaky_relu", "elu", alpha=0.5)
    >>> [(n.name, n.alpha) for n in p.models["Generator"].find("elu")]
    [('elu_1', 0.5)]
    """
    for role, op in (("old", old), ("new", new)):
        if op not in ACTIVATIONS:
            raise ArgumentError(
                f"replace_activation: '{role}' must be an activation. Received: {op}",
                hint=did_you_mean(op, ACTIVATIONS),
            )
        if "trainable" in OPS[op].model_fields:
            raise ArgumentError(
                f"replace_activation swaps parameter-free activations; {op} learns a slope "
                f"per channel. Received: {role}={op}"
            )
    make_node(new, "probe", ("x",), **attrs)  # bad attributes fail here, once
    auto = re.compile(rf"(.*){re.escape(old)}_\d+")

    def swap(node: Node, ctx: Context) -> Node | None:
        if node.op != old:
            return None
        named = auto.fullmatch(node.name)
        name = ctx.fresh(named.group(1) + new) if named else node.name
        return make_node(new, name, node.inputs, **attrs)

    return rewrite(program, swap, model=model, weights=weights, name="replace-activation")
