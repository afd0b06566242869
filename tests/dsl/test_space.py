"""Search spaces in the language: distributions, `repeat`, what `nnc check` refuses
(with line and column), what `nnc fmt` keeps, and the plain files a trial trains."""

from __future__ import annotations

import pytest

import nnc
from nnc.dsl.space import parse_space
from nnc.errors import ArgumentError, GraphError, NncError, ShapeError
from nnc.ir.space import Choice, Integer, LogUniform, Uniform

RECIPE = (
    "train M {\n"
    "    data       digits, scale = unit\n"
    "    validation 0.2\n"
    "    loss       cross_entropy\n"
    "    optimizer  adam(lr = {lr})\n"
    "    batch      {batch}\n"
    "}}\n"
)


def spec(model: str, lr: str = "0.01", batch: str = "32") -> str:
    return model + "\n" + RECIPE.replace("{lr}", lr).replace("{batch}", batch).replace("}}", "}")


MLP = "model M {\n    input x: [64]\n    dense(%s) relu\n    dropout(%s)\n    dense(10)\n}\n"
DIGITS_SPACE = spec(
    MLP % ("choice(32, 64, 128)", "uniform(0, 0.5)"),
    lr="loguniform(1e-4, 1e-1)",
    batch="choice(32, all)",
)


def test_every_kind_of_distribution_is_a_parameter_named_where_it_is_used() -> None:
    space = parse_space(DIGITS_SPACE).space
    assert [(p.name, p.distribution) for p in space.parameters] == [
        ("dense_1.units", Choice(options=(32, 64, 128))),
        ("dropout_1.rate", Uniform(low=0.0, high=0.5)),
        ("optimizer.lr", LogUniform(low=1e-4, high=1e-1)),
        ("batch", Choice(options=(32, "all"))),
    ]
    assert space.parameter("dense_1.units").span is not None
    assert space.parameter("dense_1.units").span.line == 3


def test_a_sample_is_a_plain_file_that_parses_to_the_sampled_network() -> None:
    sample = parse_space(DIGITS_SPACE).sample(
        {"dense_1.units": 128, "dropout_1.rate": 0.25, "optimizer.lr": 0.003, "batch": "all"}
    )
    program = nnc.parse(sample.text)  # no distribution left
    assert program.models["M"].node("dense_1").units == 128
    assert program.models["M"].node("dropout_1").rate == 0.25
    recipe = program.recipes["M"]
    assert (recipe.optimizer.lr, recipe.batch) == (0.003, "all")
    assert "    dense(128) relu\n    dropout(0.25)\n" in sample.text


@pytest.mark.parametrize(
    ("source", "error", "line", "col", "message"),
    [
        (
            spec(MLP % ("choice()", "0.1")),
            ArgumentError,
            3,
            11,
            "dense: argument 'units': choice needs at least one option. Received: choice()",
        ),
        (
            spec(MLP % ("64", "0.1"), lr="uniform(0.5, 0.1)"),
            ArgumentError,
            12,
            26,
            "uniform: low (0.5) must be below high (0.1). Received: low=0.5, high=0.1",
        ),
        (
            spec(MLP % ("64", "0.1"), lr="loguniform(0, 0.1)"),
            ArgumentError,
            12,
            37,
            "loguniform: argument 'low' should be greater than 0. Received: low=0.0",
        ),
        (
            spec(MLP % ("64", "0.1"), lr="loguniform(1e-3, -1.0)"),
            ArgumentError,
            12,
            43,
            "loguniform: argument 'high' should be greater than 0. Received: high=-1.0",
        ),
        (
            spec(MLP % ("integer(8, 64, step = 5)", "0.1")),
            ArgumentError,
            3,
            11,
            "high - low (56) must be a multiple of step (5)",
        ),
        (
            spec(MLP % ("choice(32, 64, 32)", "0.1")),
            ArgumentError,
            3,
            26,
            "choice: option 32 is given twice",
        ),
        (
            spec(MLP % ("uniform(16, 64)", "0.1")),
            ArgumentError,
            3,
            11,
            "dense: argument 'units' takes a whole number, and uniform draws real numbers",
        ),
        (
            # dropout(1.0) is out of range: the error names the upper bound and points at it
            spec(MLP % ("64", "uniform(0, 1)")),
            ArgumentError,
            4,
            24,
            "dropout_1.rate = 1.0 makes the spec invalid: dropout: argument 'rate' should be "
            "less than 1",
        ),
    ],
    ids=[
        "empty_choice",
        "low_above_high",
        "loguniform_zero",
        "loguniform_negative",
        "step_misfit",
        "duplicate_option",
        "real_for_integer",
        "bound_out_of_range",
    ],
)
def test_bad_spaces_are_check_errors_with_line_and_column(
    source: str, error: type[NncError], line: int, col: int, message: str
) -> None:
    with pytest.raises(error) as caught:
        parse_space(source, "space.nn")
    err = caught.value
    assert message in err.message
    assert err.span is not None and (err.span.line, err.span.col) == (line, col)
    assert err.render().startswith(f"space.nn:{line}:{col}: error: ")


CNN = (
    "model M {\n"
    "    input x: [1, 8, 8]\n"
    "    conv2d(4, kernel = choice(%s)) relu\n"
    "    flatten\n"
    "    dense(10)\n"
    "}\n"
)


@pytest.mark.parametrize(("options", "col"), [("3, 9", 34), ("9, 3", 31)])
def test_a_choice_that_breaks_a_shape_names_and_points_at_the_value(options: str, col: int) -> None:
    """Whether the bad option is the first (the base program) or a later one."""
    with pytest.raises(ShapeError) as caught:
        parse_space(spec(CNN % options), "cnn.nn")
    err = caught.value
    assert err.message.startswith(
        "conv2d_1.kernel = 9 makes the spec invalid: conv2d: window of size 9"
    )
    assert "(at line 3, column 5)" in err.message  # where the shape rule failed
    assert (err.span.line, err.span.col, err.span.end_col) == (3, col, col + 1)


def test_a_block_argument_drawn_once_per_instance_is_checked_at_each_value() -> None:
    source = (
        "block res(c) {\n    input x: [c]\n    y = x |> dense(c)\n    output relu(x + y)\n}\n"
        "model M {\n    input x: [64]\n    res(choice(64, 32))\n    dense(10)\n}\n"
    )
    with pytest.raises(ShapeError) as caught:
        parse_space(spec(source))
    assert caught.value.message.startswith("res_1.c = 32 makes the spec invalid:")
    assert (caught.value.span.line, caught.value.span.col) == (8, 20)


def test_every_value_of_a_short_integer_range_is_checked() -> None:
    """6 filters over 12 channels: groups 1, 2, 3 and 6 (both ends) fit, 4 does not."""
    source = (
        "model M {\n    input x: [12, 8, 8]\n    conv2d(6, 3, groups = integer(1, 6))\n"
        "    flatten\n    dense(10)\n}\n"
    )
    with pytest.raises(ArgumentError) as caught:
        parse_space(source)  # a model alone: no data to fit
    assert caught.value.message.startswith(
        "conv2d_1.groups = 4 makes the spec invalid: conv2d: filters=6 is not divisible by groups=4"
    )
    assert (caught.value.span.line, caught.value.span.col) == (3, 27)


def test_a_distribution_inside_an_option_exists_when_that_option_is_chosen() -> None:
    source = spec(
        MLP % ("64", "0.1"),
        lr="0.01) \n    schedule   choice(constant, step(every = integer(2, 8)), "
        "exponential(uniform(0.8, 0.99))",
    )
    space = parse_space(source)
    assert space.space.names == ("schedule", "schedule.every", "schedule.gamma")
    asked: list[str] = []

    def suggest(parameter):  # type: ignore[no-untyped-def]
        asked.append(parameter.name)
        return {"schedule": "constant"}.get(parameter.name, parameter.distribution.probes()[0])

    sample = space.draw(suggest)
    assert asked == ["schedule"] and sample.values == {"schedule": "constant"}
    stepped = space.sample({"schedule": "step(every = integer(2, 8))", "schedule.every": 5})
    assert nnc.parse(stepped.text).recipes["M"].schedule.every == 5


def test_an_inner_distribution_is_probed_with_its_option_chosen() -> None:
    """The bad inner value is only reachable through the second option."""
    source = spec(
        MLP % ("64", "0.1"),
        lr="0.01) \n    schedule   choice(constant, exponential(uniform(0.5, 0.0))",
    )
    with pytest.raises(ArgumentError, match=r"uniform: low \(0.5\) must be below high \(0\)"):
        parse_space(source)


def test_plain_commands_refuse_a_distribution_and_point_at_it() -> None:
    with pytest.raises(ArgumentError) as caught:
        nnc.parse(DIGITS_SPACE, "space.nn")
    err = caught.value
    assert "dense: argument 'units': choice(32, 64, 128) is a search distribution" in err.message
    assert (err.span.line, err.span.col) == (3, 11)
    assert "nnc search" in (err.hint or "")


def test_an_initializer_named_uniform_stays_an_initializer() -> None:
    source = spec(MLP % ("64, init = uniform(-0.1, 0.1)", "0.1"))
    assert nnc.parse(source).models["M"].node("dense_1").init.kind == "uniform"
    inner = spec(MLP % ("64, init = uniform(choice(-0.2, -0.1), 0.1)", "0.1"))
    assert parse_space(inner).space.names == ("dense_1.init.lo",)


def test_layers_and_activations_can_be_chosen() -> None:
    source = spec(
        "model M {\n    input x: [64]\n    dense(32) choice(relu, tanh, leaky_relu(0.1))\n"
        "    dense(10, activation = choice(softmax, sigmoid))\n}\n"
    )
    space = parse_space(source)
    assert space.space.names == ("layer_1", "dense_2.activation")
    sample = space.sample({"layer_1": "leaky_relu(0.1)", "dense_2.activation": "sigmoid"})
    ops = [n.op for n in nnc.parse(sample.text).models["M"].nodes]
    assert ops == ["dense", "leaky_relu", "dense", "sigmoid"]
    with pytest.raises(ArgumentError, match="a layer is drawn with choice"):
        parse_space(source.replace("choice(relu, tanh, leaky_relu(0.1))", "uniform(0, 1)"))


# -- repeat ---------------------------------------------------------------------------


def test_repeat_lowers_to_its_body_written_out() -> None:
    repeated = nnc.parse(
        "model M {\n    input x: [4]\n    repeat 3 {\n        dense(4) relu\n    }\n"
        "    dense(1)\n}\n"
    )
    written = nnc.parse(
        "model M { input x: [4]  dense(4) relu  dense(4) relu  dense(4) relu  dense(1) }"
    )
    assert repeated == written
    assert [n.name for n in repeated.models["M"].nodes][:4] == [
        "dense_1",
        "relu_1",
        "dense_2",
        "relu_2",
    ]


def test_repeat_with_assignments_and_blocks() -> None:
    source = (
        "block res(c) {\n    input x: [c]\n    output relu(x + dense(x, c))\n}\n"
        "model M {\n    input x: [8]\n    h = x\n    repeat 2 {\n"
        "        h = h |> res(8) |> dropout(0.1)\n    }\n    dense(1)\n}\n"
    )
    names = [n.name for n in nnc.parse(source).models["M"].nodes]
    assert names == [
        "res_1_dense_1",
        "res_1_add_1",
        "res_1_relu_1",
        "h_2",
        "res_2_dense_1",
        "res_2_add_1",
        "res_2_relu_1",
        "h_3",
        "dense_1",
    ]


def test_the_number_of_repetitions_is_a_search_parameter() -> None:
    source = spec(
        "model M {\n    input x: [64]\n    repeat integer(0, 3) {\n"
        "        dense(choice(16, 32)) relu\n    }\n"
        "    dense(10)\n}\n"
    )
    space = parse_space(source)
    assert [(p.name, p.distribution) for p in space.space.parameters] == [
        ("repeat_1", Integer(low=0, high=3)),
        ("dense_1.units", Choice(options=(16, 32))),
    ]
    # the base program repeats once, so the body's distribution is found and checked
    assert len(space.program.models["M"].nodes) == 3
    for count in (0, 3):
        program = nnc.parse(space.sample({"repeat_1": count, "dense_1.units": 16}).text)
        assert len(program.models["M"].nodes) == 2 * count + 1


@pytest.mark.parametrize(
    ("body", "error", "message", "col"),
    [
        (
            "repeat -1 { dense(4) }",
            ArgumentError,
            "repeat takes a count from 0 to 10000. Received: -1",
            12,
        ),
        ("repeat 100000 { }", ArgumentError, "Received: 100000", 12),
        (
            "repeat 1.5 { dense(4) }",
            ArgumentError,
            "repeat: the count expects an integer. Received: 1.5",
            12,
        ),
        ("repeat 2 { input y: [4] }", GraphError, "a repeat body cannot declare an input", 16),
        ("repeat 2 { output x }", GraphError, "a repeat body cannot declare the outputs", 16),
    ],
)
def test_bad_repeats_are_errors_with_line_and_column(
    body: str, error: type[NncError], message: str, col: int
) -> None:
    with pytest.raises(error) as caught:
        nnc.parse(f"model M {{\n    input x: [4]\n    {body}\n}}\n")
    assert message in caught.value.message
    assert (caught.value.span.line, caught.value.span.col) == (3, col)


def test_fmt_keeps_distributions_and_repeats_with_their_comments() -> None:
    messy = (
        "model M {   # the space\n  input x: [64]\n"
        "  repeat integer(1, 3) { dense(choice(64,128)) relu   # wide\n"
        "  dropout(uniform(0,0.5)) }\n  dense(10)\n}\n"
        "train M { data digits, scale = unit\n validation 0.2\n loss cross_entropy\n"
        "  optimizer adam(lr = loguniform(1e-4, 1e-1))\n batch choice(32, 64) }\n"
    )
    formatted = nnc.format_source(messy)
    assert formatted == (
        "model M {                              # the space\n"
        "    input x: [64]\n"
        "    repeat integer(1, 3) {\n"
        "        dense(choice(64, 128)) relu    # wide\n"
        "        dropout(uniform(0, 0.5))\n"
        "    }\n"
        "    dense(10)\n"
        "}\n"
        "\n"
        "train M {\n"
        "    data       digits, scale = unit\n"
        "    validation 0.2\n"
        "    loss       cross_entropy\n"
        "    optimizer  adam(lr = loguniform(1e-4, 1e-1))\n"
        "    batch      choice(32, 64)\n"
        "}\n"
    )
    assert nnc.format_source(formatted) == formatted
    assert parse_space(formatted).space == parse_space(messy).space
