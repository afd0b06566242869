"""The contrastive divergence recipe (``optimizer cd(...)``): its errors with line and
column, its canonical text, and the editor's tables."""

from __future__ import annotations

import pytest

import nnc
from nnc.dsl import format_program
from nnc.errors import ArgumentError, GraphError, NncError, RecipeError, ShapeError
from nnc.ir.training import Cd, CdRecipe, Dataset
from nnc.lsp.completion import _specs, recipe_fields

RBM = "model R {\n    input x: [64]\n    rbm(16)\n}\n"


def recipe(settings: str, model: str = RBM) -> str:
    return model + "train R {\n" + settings + "}\n"


GOOD = recipe("    data digits, binarize = true\n    optimizer cd(k = 2, lr = 0.05)\n")

# name: (source, error class, line, column, message fragment)
CASES = {
    "k_zero": (
        recipe("    data digits, binarize = true\n    optimizer cd(k = 0)\n"),
        ArgumentError,
        7,
        18,
        "cd: argument 'k' should be greater than 0. Received: k=0",
    ),
    "momentum_one": (
        recipe("    data digits, binarize = true\n    optimizer cd(momentum = 1)\n"),
        ArgumentError,
        7,
        18,
        "cd: argument 'momentum' should be less than 1",
    ),
    "loss_given": (
        recipe("    data digits, binarize = true\n    loss mse\n    optimizer cd\n"),
        RecipeError,
        7,
        5,
        "contrastive divergence (optimizer cd) has no loss",
    ),
    "unknown_setting": (
        recipe("    data digits, binarize = true\n    optimizer cd\n    metrics accuracy\n"),
        RecipeError,
        8,
        5,
        "unknown setting 'metrics' in a contrastive divergence train recipe",
    ),
    "not_an_rbm": (
        recipe(
            "    data digits, binarize = true\n    optimizer cd\n",
            "model R {\n    input x: [64]\n    dense(16) sigmoid\n}\n",
        ),
        GraphError,
        3,
        5,
        "the model must be its input followed by rbm layers, each feeding the next. "
        "Received: 'dense_1' (dense) after 'x'",
    ),
    "rbm_then_dense": (
        recipe(
            "    data digits, binarize = true\n    optimizer cd\n",
            "model R {\n    input x: [64]\n    rbm(16)\n    dense(10)\n}\n",
        ),
        GraphError,
        4,
        5,
        "Received: 'dense_1' (dense) after 'rbm_1'",
    ),
    "rbm_cannot_feed_conv": (
        "model R {\n    input x: [64]\n    rbm(16)\n    conv2d(4, kernel = 3)\n}\n",
        ShapeError,
        4,
        5,
        "conv2d",
    ),
    "gaussian_visible": (
        recipe(
            "    data digits, binarize = true\n    optimizer cd\n",
            "model R {\n    input x: [64]\n    rbm(16, visible = gaussian)\n}\n",
        ),
        RecipeError,
        6,
        5,
        "'rbm_1' has gaussian visible units, which model real values; binarize = true makes "
        "every value 0 or 1, what Bernoulli visible units model",
    ),
    "gaussian_visible_scaled": (
        recipe(
            "    data digits, scale = unit\n    optimizer cd\n",
            "model R {\n    input x: [64]\n    rbm(16, visible = gaussian)\n}\n",
        ),
        RecipeError,
        6,
        5,
        "so the samples are standardised per unit (mean 0, variance 1), which undoes scale = unit",
    ),
    "gaussian_visible_above_an_rbm": (
        recipe(
            "    data digits\n    optimizer cd\n",
            "model R {\n    input x: [64]\n    rbm(16, visible = gaussian)\n"
            "    rbm(8, visible = gaussian)\n}\n",
        ),
        RecipeError,
        4,
        5,
        "'rbm_2' has gaussian visible units, but its visible units are the hidden "
        "probabilities of 'rbm_1', in (0, 1); only the first rbm of a stack",
    ),
    "data_out_of_range": (
        recipe("    data digits\n    optimizer cd\n"),
        RecipeError,
        6,
        5,
        "Bernoulli visible units take values in [0, 1]; dataset 'digits' ranges over [0, 16]",
    ),
    "binarize_and_scale": (
        recipe("    data digits, scale = unit, binarize = true\n    optimizer cd\n"),
        RecipeError,
        6,
        5,
        "'binarize' makes every value 0 or 1, so it takes no 'scale'. Received: scale = unit",
    ),
    "cd_in_a_gan": (
        "model G {\n    input z: [4]\n    dense(64) sigmoid\n}\n"
        "model D {\n    input x: [64]\n    dense(1)\n}\n"
        "train T {\n    generator G\n    discriminator D\n    data digits, scale = unit\n"
        "    optimizer cd\n}\n",
        RecipeError,
        13,
        15,
        "contrastive divergence (optimizer cd) trains rbm layers, not a GAN",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_cd_recipe(name: str) -> None:
    source, cls, line, col, fragment = CASES[name]
    with pytest.raises(NncError) as info:
        nnc.parse(source, "t.nn")
    err = info.value
    assert type(err) is cls, f"{type(err).__name__}: {err}"
    assert fragment in err.message, err.message
    assert err.span is not None
    assert (err.span.line, err.span.col) == (line, col), err.render()
    assert err.render().startswith(f"t.nn:{line}:{col}: error: ")


def test_cd_recipe_lowers_to_its_own_kind() -> None:
    program = nnc.parse(GOOD)
    r = program.recipes["R"]
    assert isinstance(r, CdRecipe)
    assert r.optimizer == Cd(k=2, lr=0.05, momentum=0.5, weight_decay=0.0002, persistent=False)
    assert r.data == Dataset(name="digits", binarize=True)
    assert program.param_counts("R")["rbm_1"] == 64 * 16 + 64 + 16  # W, b, c


def test_cd_recipe_round_trips_through_the_formatter() -> None:
    program = nnc.parse(GOOD)
    text = format_program(program)
    assert "    optimizer cd(2, lr = 0.05)\n" in text  # cd(k) reads CD-k
    assert "    data      digits, binarize = true\n" in text
    assert nnc.parse(text) == program
    resolved = format_program(program, resolved=True)
    assert "cd(k = 2, lr = 0.05, momentum = 0.5, weight_decay = 0.0002, persistent = false)" in (
        resolved
    )
    assert nnc.parse(resolved) == program


def test_the_editor_offers_cd_among_the_optimizers() -> None:
    assert sorted(_specs(recipe_fields()["optimizer"])) == [
        "adagrad",
        "adam",
        "cd",
        "rmsprop",
        "sgd",
    ]


STACK = "model S {\n    input x: [64]\n    rbm(32)\n    rbm(16)\n}\n"
PRE = "train P {\n    model S\n    data digits, binarize = true\n    optimizer cd\n}\n"


def dbn(body: str, settings: str = "    pretrain P\n") -> str:
    return (
        STACK
        + "model D {\n    input x: [64]\n"
        + body
        + "    dense(10)\n}\n"
        + PRE
        + "train D {\n    data digits, binarize = true\n    loss cross_entropy\n"
        + settings
        + "}\n"
    )


DBN_CASES = {
    "pretrain_missing": (
        dbn("    S\n", "    pretrain Q\n"),
        RecipeError,
        19,
        5,
        "recipe 'D' pretrains with 'Q', which is no recipe of this file",
    ),
    "pretrain_not_cd": (
        dbn("    S\n", "    pretrain D\n"),
        RecipeError,
        19,
        5,
        "recipe 'D' pretrains with 'D', which is not a contrastive divergence recipe",
    ),
    "model_does_not_call_the_stack": (
        dbn("    dense(16) sigmoid\n"),
        RecipeError,
        19,
        5,
        "model 'D' must call 'S' as a layer",
    ),
    "stack_sizes_do_not_chain": (
        dbn("    dense(32) sigmoid\n    S\n"),
        ShapeError,
        9,
        5,
        "[64]",
    ),
}


@pytest.mark.parametrize("name", list(DBN_CASES))
def test_bad_deep_belief_network(name: str) -> None:
    source, cls, line, col, fragment = DBN_CASES[name]
    with pytest.raises(NncError) as info:
        nnc.parse(source, "t.nn")
    err = info.value
    assert type(err) is cls, f"{type(err).__name__}: {err}"
    assert fragment in err.message, err.message
    assert err.span is not None
    assert (err.span.line, err.span.col) == (line, col), err.render()


def test_a_deep_belief_network_trains_its_last_recipe_by_default() -> None:
    from nnc.train.recipes import recipe_program, select_any_recipe

    program = nnc.parse(dbn("    S\n"))
    chosen = select_any_recipe(program, None)
    assert chosen.name == "D"
    single = recipe_program(program, chosen)
    assert list(single.recipes) == ["P", "D"]
    assert nnc.parse(format_program(single)) == single


@pytest.mark.parametrize("opset", [11, 17])
def test_an_exported_rbm_binarises_raw_digits_as_training_does(opset: int) -> None:
    from tests.conftest import require

    require("onnx")
    require("onnxruntime")
    import numpy as np

    from nnc.backends import onnx as backend
    from nnc.backends.onnx.runtime import open_session
    from nnc.data.builtin import load_builtin
    from nnc.train.energy import hidden_probabilities

    program = nnc.parse(GOOD)
    raw = np.asarray(load_builtin("digits").x[:50], np.float32).reshape(50, 64)
    session = open_session(backend.emit(program, preprocess=True, opset=opset))
    (got,) = session.run(None, {session.get_inputs()[0].name: raw})
    w = nnc.runtime(program, "numpy").get_weights()
    rbm = {p: w[f"rbm_1.{p}"].astype(np.float64) for p in ("weight", "visible_bias", "hidden_bias")}
    want = hidden_probabilities(rbm, (raw > 8).astype(np.float64))  # binarize: above 8 of 16
    assert float(np.max(np.abs(got - want))) < 1e-6


def test_the_builder_writes_the_rbm_example() -> None:
    from tests.conftest import EXAMPLES

    b = nnc.Builder("DigitsRbm")
    b.output(b.rbm(b.input("pixels", [64]), 64))
    b.train(
        data=Dataset(name="digits", binarize=True),
        optimizer=Cd(k=1, lr=0.5, momentum=0.5, weight_decay=0.0002),
        epochs=20,
        batch=32,
        seed=0,
    )
    assert b.build() == nnc.load(EXAMPLES / "rbm_digits.nn")
    with pytest.raises(RecipeError, match="without a loss"):
        other = nnc.Builder("Other")
        other.output(other.rbm(other.input("x", [64]), 8))
        other.train(data="digits", loss="mse", optimizer="cd")
        other.build()
