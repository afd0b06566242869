"""Every class of user error is a typed NncError with its message, line and column."""

from __future__ import annotations

import pytest

import nnc
from nnc.errors import (
    ArgumentError,
    GraphError,
    NameResolutionError,
    NncError,
    ParseError,
    RecipeError,
    ShapeError,
)

XOR_MODEL = "model M {\n    input x: [2]\n    dense(1)\n}\n"

# name: (source, error class, line, column, message fragment, hint fragment or None)
CASES = {
    "syntax_trailing_comma": (
        "model M {\n    input x: [2]\n    dense(5,\n}\n",
        ParseError,
        4,
        1,
        "unexpected '}'",
        "trailing comma",
    ),
    "syntax_missing_parens": (
        "model M {\n    input x: [2]\n    dense 5\n}\n",
        ParseError,
        3,
        11,
        "unexpected '5'",
        "parentheses",
    ),
    "syntax_bad_character": (
        "model M {\n    input x: [2] $\n}\n",
        ParseError,
        2,
        18,
        "unexpected character '$'",
        None,
    ),
    "syntax_unclosed_brace": (
        "model M {\n    input x: [2]\n",
        ParseError,
        2,
        17,
        "unexpected end of file",
        "unclosed '{'",
    ),
    "syntax_setting_with_equals": (
        XOR_MODEL + "train M {\n    epochs = 10\n}\n",
        ParseError,
        6,
        12,
        "unexpected '='",
        "without '='",
    ),
    "unknown_layer": (
        "model M {\n    input x: [2]\n    desne(5)\n}\n",
        NameResolutionError,
        3,
        5,
        "unknown layer 'desne'",
        "did you mean 'dense'?",
    ),
    "unknown_activation_layer": (
        "model M {\n    input x: [2]\n    dense(5) sigmod\n}\n",
        NameResolutionError,
        3,
        14,
        "unknown layer 'sigmod'",
        "did you mean 'sigmoid'?",
    ),
    "unknown_activation_argument": (
        "model M {\n    input x: [2]\n    dense(5, activation = rleu)\n}\n",
        ArgumentError,
        3,
        27,
        "'activation' expects an activation",
        "did you mean 'relu'?",
    ),
    "unknown_keyword_argument": (
        "model M {\n    input x: [2]\n    dense(5, unit = 3)\n}\n",
        ArgumentError,
        3,
        14,
        "dense has no argument 'unit'",
        "did you mean 'units'?",
    ),
    "unknown_optimizer": (
        XOR_MODEL + "train M {\n    data xor\n    loss mse\n    optimizer adamm(lr = 0.1)\n}\n",
        ArgumentError,
        8,
        15,
        "setting 'optimizer' expects one of adagrad, adam, rmsprop, sgd",
        "did you mean 'adam'?",
    ),
    "unknown_loss": (
        XOR_MODEL + "train M {\n    data xor\n    loss mes\n}\n",
        ArgumentError,
        7,
        10,
        "Received: mes",
        "did you mean 'mse'?",
    ),
    "unknown_setting": (
        XOR_MODEL + "train M {\n    data xor\n    loss mse\n    epoch 3\n}\n",
        RecipeError,
        8,
        5,
        "unknown setting 'epoch'",
        "did you mean 'epochs'?",
    ),
    "unknown_dataset": (
        XOR_MODEL + "train M {\n    data xro\n    loss mse\n}\n",
        RecipeError,
        6,
        5,
        "unknown dataset 'xro'",
        "did you mean 'xor'?",
    ),
    "wrong_type_float_for_int": (
        "model M {\n    input x: [2, 8, 8]\n    conv2d(4, kernel = 1.5)\n}\n",
        ArgumentError,
        3,
        24,
        "argument 'kernel' expects an integer or a list of integers. Received: kernel=1.5",
        None,
    ),
    "wrong_type_bool_for_int": (
        "model M {\n    input x: [2]\n    dense(true)\n}\n",
        ArgumentError,
        3,
        11,
        "argument 'units' expects an integer. Received: units=true",
        None,
    ),
    "wrong_enum_value": (
        "model M {\n    input x: [1, 8, 8]\n    conv2d(4, 3, padding = smae)\n}\n",
        ArgumentError,
        3,
        28,
        "argument 'padding' expects one of same, valid",
        "'same'",
    ),
    "too_many_positional": (
        "model M {\n    input x: [2]\n    dense(5, 3)\n}\n",
        ArgumentError,
        3,
        14,
        "dense takes 1 positional argument (units). Received: 2",
        None,
    ),
    "missing_argument": (
        "model M {\n    input x: [2]\n    dense\n}\n",
        ArgumentError,
        3,
        5,
        "dense: missing required argument 'units'",
        None,
    ),
    "out_of_range": (
        "model M {\n    input x: [2]\n    dropout(1.5)\n}\n",
        ArgumentError,
        3,
        13,
        "argument 'rate' should be less than 1. Received: rate=1.5",
        None,
    ),
    "dense_after_conv_without_flatten": (
        "model M {\n    input x: [1, 8, 8]\n    conv2d(4, 3)\n    dense(10)\n}\n",
        ShapeError,
        4,
        5,
        "Received: [4, 6, 6]; insert flatten",
        None,
    ),
    "add_not_broadcasting": (
        "model M {\n    input x: [4]\n    y = x |> dense(3)\n    output x + y\n}\n",
        ShapeError,
        4,
        14,  # the operator
        "'+' cannot broadcast [4] with [3]: dim -1 is 4 against 3",
        None,
    ),
    "conv_on_rank_2_input": (
        "model M {\n    input x: [8, 8]\n    conv2d(4, 3)\n}\n",
        ShapeError,
        3,
        5,
        "conv2d: expects a rank-3 input [channels, height, width]. Received: [8, 8]",
        None,
    ),
    "unresolvable_symbolic_dim": (
        "model M {\n    input x: [t]\n    dense(3)\n}\n",
        ShapeError,
        3,
        5,
        "cannot resolve symbolic dim 't'",
        "declare the input with a number",
    ),
    "unresolvable_symbolic_after_flatten": (
        "model M {\n    input x: [1, h, w]\n    conv2d(2, 3)\n    flatten\n    dense(3)\n}\n",
        ShapeError,
        5,
        5,
        "cannot resolve symbolic dim '2*(h-2)*(w-2)'",
        None,
    ),
    "duplicate_input": (
        "model M {\n    input x: [4]\n    input x: [4]\n    dense(3)\n}\n",
        NameResolutionError,
        3,
        11,
        "duplicate input 'x'",
        None,
    ),
    "duplicate_model": (
        "model M {\n    input x: [4]\n}\nmodel M {\n    input x: [4]\n}\n",
        NameResolutionError,
        4,
        7,
        "'M' is defined twice",
        None,
    ),
    "duplicate_layer_name": (
        "model M {\n    input x: [4]\n    dense(3, name = h)\n    dense(3, name = h)\n}\n",
        NameResolutionError,
        4,
        5,
        "duplicate name 'h'",
        None,
    ),
    "undefined_name": (
        "model M {\n    input x: [4]\n    y = z |> dense(3)\n}\n",
        NameResolutionError,
        3,
        9,
        "undefined name 'z'",
        None,
    ),
    "graph_cycle": (
        "model M {\n    input x: [4]\n    a = x + b\n    b = a |> dense(4)\n    output b\n}\n",
        GraphError,
        3,
        11,  # the '+' of the node on the cycle
        "graph cycle: a -> b -> a",
        None,
    ),
    "recipe_names_missing_model": (
        XOR_MODEL + "train Xor {\n    data xor\n    loss mse\n}\n",
        RecipeError,
        5,
        7,
        "train recipe 'Xor' names a missing model 'Xor'",
        None,
    ),
    "recipe_model_setting_missing": (
        XOR_MODEL + "train T {\n    model Mm\n    data xor\n    loss mse\n}\n",
        RecipeError,
        6,
        5,
        "names a missing model 'Mm'",
        "did you mean 'M'?",
    ),
    "recipe_data_does_not_fit": (
        "model M {\n    input x: [3]\n    dense(1)\n}\ntrain M {\n    data xor\n    loss mse\n}\n",
        RecipeError,
        6,
        5,
        "dataset 'xor' has samples of shape [2] (2 values) but the model input is [3]",
        None,
    ),
    "block_input_does_not_fit": (
        "block b(c) {\n    input x: [c]\n    dense(c)\n}\n"
        "model M {\n    input x: [4]\n    b(8)\n}\n",
        ShapeError,
        7,
        5,
        "block 'b' input 'x' is declared [8] but receives [4]",
        None,
    ),
    "recursive_block": (
        "block b(c) {\n    input x: [c]\n    b(c)\n}\nmodel M {\n    input x: [4]\n    b(4)\n}\n",
        GraphError,
        3,
        5,
        "block 'b' uses itself",
        None,
    ),
    "model_calls_itself": (
        "model M {\n    input x: [4]\n    M\n}\n",
        GraphError,
        1,
        7,
        "model 'M' uses itself",
        None,
    ),
    "reserved_word": (
        "model M {\n    input class: [2]\n    dense(3)\n}\n",
        NameResolutionError,
        2,
        11,
        "'class' is a reserved word",
        None,
    ),
    "bad_dtype": (
        "model M {\n    input x: float16[3]\n    dense(3)\n}\n",
        ArgumentError,
        2,
        5,
        "input dtype must be float32 or int64. Received: float16",
        None,
    ),
    "layer_before_input": (
        "model M {\n    dense(3)\n}\n",
        GraphError,
        2,
        5,
        "a layer needs an input",
        None,
    ),
    "autoencoder_output_differs": (
        "model M {\n    input x: [64]\n    dense(10)\n}\ntrain M {\n    data digits\n"
        "    target input\n    loss mse\n}\n",
        RecipeError,
        7,
        5,
        "autoencoder 'M' reconstructs its input, so the output of 'M' must be [64] like its "
        "input. Received: [10]",
        None,
    ),
    "classes_do_not_fit": (
        "model M {\n    input x: [64]\n    dense(3)\n}\ntrain M {\n    data digits\n"
        "    loss cross_entropy\n}\n",
        RecipeError,
        7,
        5,
        "dataset 'digits' has 10 classes but the model outputs [3]",
        None,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_error(name: str) -> None:
    source, cls, line, col, fragment, hint = CASES[name]
    with pytest.raises(NncError) as info:
        nnc.parse(source, "t.nn")
    err = info.value
    assert type(err) is cls, f"{type(err).__name__}: {err}"
    assert fragment in err.message
    assert err.span is not None
    assert (err.span.file, err.span.line, err.span.col) == ("t.nn", line, col), err.render()
    if hint is not None:
        assert err.hint is not None and hint in err.hint
    rendered = err.render()
    assert rendered.startswith(f"t.nn:{line}:{col}: error: ")
    # the source line, then a caret under the offending text
    text_line = source.splitlines()[line - 1]
    assert text_line in rendered.splitlines()[1]
    caret_line = rendered.splitlines()[2]
    assert caret_line.index("^") - caret_line.index("|") - 2 == col - 1


def test_error_render_without_source() -> None:
    err = ShapeError("bad", None)
    assert err.render() == "error: bad"


def test_deep_nesting_is_refused_with_location() -> None:
    source = "model M {\n    input x: [2]\n    y = " + "(" * 100 + "x" + ")" * 100 + "\n}\n"
    with pytest.raises(NncError) as info:
        nnc.parse(source, "t.nn")
    assert "nested deeper than 64" in info.value.message
    assert info.value.span is not None and info.value.span.line == 3
