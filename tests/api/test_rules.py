"""The rule facility: pattern, check (with a reason), rewrite; rule sets; the generic
traversal; and that every rewrite returns checked IR without touching its input."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

import nnc
from nnc.errors import NameResolutionError, RewriteError
from nnc.ir.ops import Node
from nnc.ir.ops.dense import Dense
from nnc.rewrite import Context, Match, Replacement, Rule, RuleSet, rewrite
from nnc.rewrite.weights import NodeWeights
from tests.api.helpers import TOLERANCE, batch, max_deviation, trained_like

TWO_DENSE = """
model M {
    input x: [4]
    a = x |> dense(6) |> dense(3)
    b = x |> dense(5, bias = false) |> dense(2)
    c = x |> dense(6, name = shared_in)
    d = c |> dense(2)
    output concat(a, b, relu(c), d)
}
"""


def _merged(first: str, second: str, old: NodeWeights, prefix: str) -> NodeWeights:
    """W = W2·W1, b = W2·b1 + b2: two linear layers as one."""
    w1 = old[first]["weight"].astype(np.float64)
    b1 = old[first].get("bias", np.zeros(w1.shape[0]))
    w2 = old[second]["weight"].astype(np.float64)
    b2 = old[second]["bias"]
    return {
        second: {"weight": (w2 @ w1).astype(np.float32), "bias": (w2 @ b1 + b2).astype(np.float32)}
    }


def _merge(match: Match) -> Replacement:
    first, second = match.nodes
    merged = second.model_copy(update={"inputs": first.inputs})
    return Replacement(nodes=(merged,), weights=partial(_merged, first.name, second.name))


def _both_biased(match: Match) -> str | None:
    second = match.nodes[1]
    if not second.bias:  # type: ignore[union-attr]
        return f"'{second.name}' has no bias to absorb one"
    return None


MERGE = Rule("merge-dense", ("dense", "dense"), _merge, _both_biased)


def test_check_reasons_are_reported_when_a_rule_does_not_apply() -> None:
    p = nnc.parse(TWO_DENSE)
    w = trained_like(p, "M")
    result = RuleSet("linear", [MERGE]).apply(p, w)
    assert [e.nodes for e in result.applied] == [("dense_1", "a"), ("dense_2", "b")]
    assert [(e.nodes, e.reason) for e in result.skipped] == [
        (("shared_in", "d"), "the output of 'shared_in' is also read by relu_1"),
    ]
    assert (
        "merge-dense: M: shared_in -> d: skipped: the output of 'shared_in' is "
        "also read by relu_1" in result.explain()
    )
    q, w2 = result
    assert len(q.models["M"].find("dense")) == 4
    assert max_deviation((p, "M", w), (q, "M", w2), batch(p, "M")) < TOLERANCE  # type: ignore[arg-type]


def test_a_rules_own_check_gives_its_reason() -> None:
    p = nnc.parse("model M { input x: [4]  dense(3)  dense(2, bias = false) }")
    result = RuleSet("linear", [MERGE]).apply(p)
    assert result.applied == []
    assert str(result.skipped[0]) == (
        "merge-dense: M: dense_1 -> dense_2: skipped: 'dense_2' has no bias to absorb one"
    )
    assert result.program == nnc.check(p)


def test_rule_sets_apply_until_nothing_changes() -> None:
    p = nnc.parse("model M { input x: [4]  dense(8)  dense(8)  dense(8)  dense(2) }")
    w = trained_like(p, "M")
    q, w2 = RuleSet("linear", [MERGE]).apply(p, w)
    assert [n.name for n in q.models["M"].nodes] == ["dense_4"]
    assert max_deviation((p, "M", w), (q, "M", w2), batch(p, "M")) < TOLERANCE  # type: ignore[arg-type]


def test_patterns_name_known_ops() -> None:
    with pytest.raises(NameResolutionError, match="unknown op 'batchnrom'") as err:
        Rule("r", ("conv2d", "batchnrom"), _merge)
    assert err.value.hint == "did you mean 'batchnorm'?"
    with pytest.raises(nnc.NncError, match="needs a pattern"):
        Rule("r", (), _merge)


def test_a_rewrite_that_breaks_the_ir_is_reported_by_name() -> None:
    def dangle(match: Match) -> Node:
        return match.nodes[0].model_copy(update={"inputs": ("nowhere",)})

    rules = RuleSet("broken", [Rule("dangle", ("relu",), dangle)])
    with pytest.raises(
        RewriteError,
        match="rule set 'broken' produced a program that does not check: undefined name 'nowhere'",
    ):
        rules.apply(nnc.load("examples/digits_mlp.nn"))


def test_rules_never_change_their_input() -> None:
    p = nnc.load("examples/digits_cnn.nn")
    before = p.to_json()
    nnc.rewrite.strip_dropout(p)
    nnc.rewrite.fold_batchnorm(nnc.load("examples/resnet_block.nn"))
    assert p.to_json() == before


def test_generic_rewrite_sees_context_and_inserts_nodes() -> None:
    """Put a layernorm after every dense whose output has more than 4 units."""

    def normalise_wide(node: Node, ctx: Context) -> list[Node] | None:
        if not isinstance(node, Dense) or ctx.type_of(node.name).shape[-1] <= 4:
            return None
        norm = nnc.builder.make_node("layernorm", ctx.fresh("layernorm"), [node.name])
        return [node, norm]

    p = nnc.load("examples/house_prices.nn")
    result = rewrite(p, normalise_wide, name="normalise-wide")
    ops = [n.op for n in result.program.model().nodes]
    assert ops == ["dense", "layernorm", "relu", "dense", "layernorm", "relu", "dense"]
    assert [str(e) for e in result.log] == [
        "normalise-wide: HousePrices: dense_1: applied",
        "normalise-wide: HousePrices: dense_2: applied",
    ]
    # with weights, the new layers' parameters must come from somewhere: the rewrite
    # did not say, so it is an error rather than a silent guess
    with pytest.raises(RewriteError, match=r"normalise-wide: no weights for 'layernorm_1\.weight'"):
        rewrite(p, normalise_wide, weights=trained_like(p, "HousePrices"), name="normalise-wide")
