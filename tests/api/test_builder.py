"""The Python builder makes exactly the IR the parser makes from the same network."""

from __future__ import annotations

import pytest

import nnc
from nnc.errors import ArgumentError, GraphError, NameResolutionError, RecipeError, ShapeError
from nnc.ir.initializers import HeNormal
from nnc.ir.ops import OPS
from nnc.ir.training import Adam, Dataset, EarlyStopping, Sgd
from tests.conftest import EXAMPLES
from tests.dsl.test_arith import HEAD as ARITH_HEAD
from tests.dsl.test_arith import ROUND_TRIP


def test_mlp_matches_parser() -> None:
    b = nnc.Builder("Mlp")
    x = b.input("x", [4])
    h = b.dense(x, 5, activation="sigmoid")
    h = b.dense(h, 5, activation="sigmoid")
    b.output(b.dense(h, 3, activation="softmax"))
    b.train(
        data="iris",
        standardize=True,
        validation=0.2,
        loss="cross_entropy",
        optimizer=Sgd(lr=0.5, momentum=0.9),
        epochs=200,
        batch=16,
        metrics=["accuracy"],
        seed=3,
    )
    built = b.build()
    parsed = nnc.load(EXAMPLES / "mlp_4_5_5_3.nn")
    assert built == parsed
    # from_logits followed the softmax at the end, as the parser decides it
    assert built.recipes["Mlp"].loss.from_logits is False  # type: ignore[union-attr]
    assert nnc.count_params(built, "Mlp") == 73


def test_digits_cnn_matches_parser() -> None:
    b = nnc.Builder("DigitsCNN")
    b.input("image", [1, 8, 8])
    b.conv2d(16, kernel=3, padding="same", activation="relu")
    b.maxpool(2)
    b.conv2d(32, kernel=3, stride=1, padding="valid")
    b.relu()
    b.flatten()
    b.dense(64, init="he_normal", activation="relu")
    b.dropout(0.25)
    b.dense(10)
    b.train(
        data=Dataset(name="digits", scale="unit"),
        validation=0.2,
        loss="cross_entropy",
        optimizer=Adam(lr=0.002),
        epochs=20,
        batch=32,
        metrics="accuracy",
        early_stopping=EarlyStopping(monitor="val_loss", patience=5),
        seed=0,
    )
    built = b.build()
    assert built == nnc.load(EXAMPLES / "digits_cnn.nn")
    assert built.models["DigitsCNN"].node("dense_1").init == HeNormal()  # type: ignore[union-attr]
    assert built.models["DigitsCNN"].node("conv2d_1").kernel == (3, 3)  # type: ignore[union-attr]


@nnc.block
def residual(b: nnc.Builder, x: nnc.Tensor, c: int) -> nnc.Tensor:
    y = b.conv2d(x, c, kernel=3, padding="same")
    y = b.relu(b.batchnorm(y), name="y")
    y = b.batchnorm(b.conv2d(y, c, kernel=3, padding="same"), name="y_2")
    return b.relu(b.add(x, y))


def test_resnet_block_matches_parser_with_recipe() -> None:
    b = nnc.Builder("ResNet")
    image = b.input("image", [1, 8, 8])
    h = b.conv2d(image, 16, kernel=3, padding="same", activation="relu")
    h = residual(b, h, 16)
    h = residual(b, h, 16)
    b.output(b.dense(b.global_avg_pool(h), 10))
    b.train(
        data=Dataset(name="digits", scale="unit"),
        validation=0.2,
        loss="cross_entropy",
        optimizer=Adam(lr=0.005),
        epochs=15,
        batch=32,
        metrics=["accuracy"],
        seed=0,
    )
    built = b.build()
    parsed = nnc.load(EXAMPLES / "resnet_block.nn")
    assert [n.name for n in built.models["ResNet"].nodes] == [
        n.name for n in parsed.models["ResNet"].nodes
    ]
    assert built == parsed
    assert built.recipes == parsed.recipes
    assert built.recipes["ResNet"].loss.from_logits is True  # type: ignore[union-attr]


def test_autoencoder_calls_match_parser() -> None:
    pb = nnc.ProgramBuilder()
    enc = pb.model("Encoder")
    enc.input("pixels", [64])
    enc.dense(32, activation="relu")
    enc.dense(8)
    dec = pb.model("Decoder")
    dec.input("code", [8])
    dec.dense(32, activation="relu")
    dec.dense(64, activation="sigmoid")
    ae = pb.model("Autoencoder")
    pixels = ae.input("pixels", [64])
    ae.call(dec, ae.call(enc, pixels))  # type: ignore[arg-type]
    pb.train(
        "Autoencoder",
        data=Dataset(name="digits", scale="unit"),
        target="input",
        validation=0.2,
        loss="mse",
        optimizer=Adam(lr=0.005),
        epochs=40,
        batch=32,
        seed=8,
    )
    assert pb.build() == nnc.load(EXAMPLES / "autoencoder.nn")


def test_gan_recipe_matches_parser() -> None:
    pb = nnc.ProgramBuilder()
    g = pb.model("Generator")
    g.input("z", [16])
    g.dense(64, activation=("leaky_relu", 0.2))
    g.dense(64, activation="tanh")
    d = pb.model("Discriminator")
    d.input("pixels", [64])
    d.dense(64, activation=("leaky_relu", 0.2))
    d.dense(1)
    pb.train(
        "DigitsGAN",
        generator="Generator",
        discriminator="Discriminator",
        data=Dataset(name="digits", scale="symmetric"),
        noise={"dist": "normal", "size": 16},
        loss="non_saturating",
        optimizer=Adam(lr=0.001, beta1=0.5),
        d_steps=1,
        epochs=50,
        batch=64,
        seed=9,
    )
    assert pb.build() == nnc.load(EXAMPLES / "gan.nn")


def test_every_registry_op_has_a_builder_method() -> None:
    missing = [op for op in OPS if op != "call" and not callable(getattr(nnc.Builder, op, None))]
    assert missing == []


def test_every_registry_example_builds_through_the_generic_layer() -> None:
    """Each op's registry example, parsed, equals the same one-node model built with
    ``layer`` from the parsed node's own attributes."""
    for op, cls in OPS.items():
        if op == "call" or not cls.example or cls.arity != 1:
            continue
        parsed = nnc.parse("model M {\n    " + cls.example.format(op=op) + "\n}")
        model = parsed.models["M"]
        b = nnc.Builder("M")
        for i in model.inputs:
            b.input(i.name, list(i.type.shape), i.type.dtype)
        for node in model.nodes:
            b.layer(node.op, name=node.name, **node.attributes())
        assert b.build() == parsed, op


def test_shape_errors_are_raised_by_the_offending_call() -> None:
    b = nnc.Builder("M")
    b.input("x", [1, 8, 8])
    b.conv2d(4, 3)
    with pytest.raises(
        ShapeError,
        match=r"node 'dense_1': dense: expects a vector .*"
        r"Received: \[4, 6, 6\]; insert flatten",
    ):
        b.dense(10)
    # the failed call gave its name back: auto-naming continues as the parser would
    assert b.flatten().name == "flatten_1"
    assert b.dense(10).name == "dense_1"


def test_argument_errors_name_the_argument() -> None:
    b = nnc.Builder("M")
    x = b.input("x", [4])
    with pytest.raises(ArgumentError, match=r"dense has no argument 'unit'") as info:
        b.dense(x, unit=3)
    assert info.value.hint == "did you mean 'units'?"
    with pytest.raises(ArgumentError, match="dense: missing required argument 'units'"):
        b.dense(x)
    with pytest.raises(
        ArgumentError,
        match=r"dropout: argument 'rate' .*less than 1.*"
        r"Received: rate=1.5",
    ):
        b.dropout(x, 1.5)
    with pytest.raises(NameResolutionError, match="unknown op 'desne'") as err:
        b.layer("desne", x, 3)
    assert err.value.hint == "did you mean 'dense'?"
    with pytest.raises(ArgumentError, match="takes 1 positional argument"):
        b.dense(x, 3, True)


def test_names_are_checked() -> None:
    b = nnc.Builder("M")
    x = b.input("x", [4])
    b.dense(x, 3, name="h")
    with pytest.raises(NameResolutionError, match="duplicate name 'h'"):
        b.dense(x, 3, name="h")
    with pytest.raises(NameResolutionError, match="'class' is a reserved word"):
        b.dense(x, 3, name="class")
    other = nnc.Builder("Other")
    with pytest.raises(GraphError, match=r"belongs to model 'M'.*Builder\.call"):
        other.relu(x)


def test_recipe_errors() -> None:
    b = nnc.Builder("M")
    b.input("x", [4])
    b.dense(3)
    b.train(data="iris", loss="cross_entropy", epoch=3)
    with pytest.raises(RecipeError, match="unknown setting 'epoch'") as err:
        b.build()
    assert err.value.hint == "did you mean 'epochs'?"


def test_calls_with_several_outputs_return_a_tuple() -> None:
    pb = nnc.ProgramBuilder()
    split = pb.model("Split")
    x = split.input("x", [4])
    split.output(split.dense(x, 2), split.dense(x, 3))
    top = pb.model("Top")
    a, c = top.call("Split", top.input("x", [4]))  # type: ignore[misc]
    assert (a.ref, c.ref, c.shape) == ("split_1", "split_1:1", (3,))
    top.output(top.concat(a, c))
    program = pb.build()
    assert program.models["Top"].output_types[0].shape == (5,)


def test_models_under_construction_do_not_stop_a_call() -> None:
    pb = nnc.ProgramBuilder()
    later = pb.model("Later")  # no input yet
    inner = pb.model("Inner")
    inner.dense(inner.input("x", [3]), 2)
    outer = pb.model("Outer")
    y = outer.call(inner, outer.input("x", [3]))
    assert y.shape == (2,)  # type: ignore[union-attr]
    later.relu(later.input("x", [2]))
    assert list(pb.build().models) == ["Later", "Inner", "Outer"]


# -- arithmetic (issue 19): builder == parser ---------------------------------------


def test_builder_equals_parser() -> None:
    b = nnc.Builder("M")
    x = b.input("x", [3, 4])
    y = b.input("y", [4])
    a = b.mul(x, 0.5, name="a")
    g = b.sub(1, y, name="b")
    div = b.div(x, 2)
    mul = b.mul(a, g)
    add = b.add(div, mul)
    c = b.sub(add, b.mul(2, x), name="c")
    d = b.sub(b.pow(x, 2), b.pow(2.5, y), name="d")
    e = b.sub(b.maximum(0, x), b.minimum(x, y), name="e")
    k = b.constant([[1, 0.5, -2, 3]], name="k")
    out = b.add(b.mul(b.neg(e), k), b.div(c, b.add(d, 1)), b.constant(0.25))
    b.output(out)
    assert b.build() == nnc.parse(ROUND_TRIP)


def test_builder_operators_read_like_the_language() -> None:
    b = nnc.Builder("M")
    x = b.input("x", [3, 4])
    y = b.input("y", [4])
    b.output(-(x * 0.5) + (1 - y) / x**2)
    parsed = nnc.parse(ARITH_HEAD + "    output -(x * 0.5) + (1 - y) / pow(x, 2)\n}\n")
    assert b.build() == parsed
