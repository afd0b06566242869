"""Issue 26, hardening second round: long chains, deep and doubled model calls, line
separators, strings where a name belongs, and file names nnc prints."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import nnc
from nnc.cli.main import main
from nnc.dsl.printer import expr_text
from nnc.errors import ArgumentError, NncError, ResourceError


def run_nnc(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "internal error" not in captured.err
    return code, captured.out, captured.err


def _chain(op: str, links: int) -> str:
    link = " |> relu" if op == "|>" else " + x"
    return "model M {\n    input x: [4]\n    y = x" + link * links + "\n    output y\n}\n"


@pytest.mark.parametrize("links", [500, 5000])
@pytest.mark.parametrize("op", ["|>", "+"])
def test_long_chains_check_format_and_compile(
    op: str, links: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A chain of thousands of links (it raised RecursionError past about 480)."""
    spec = tmp_path / "m.nn"
    spec.write_text(_chain(op, links))
    assert run_nnc(capsys, "check", str(spec))[0] == 0
    code, out, _ = run_nnc(capsys, "fmt", str(spec), "--check")
    assert code == 0, out
    assert run_nnc(capsys, "compile", str(spec), "-o", str(tmp_path / "m.py"))[0] == 0
    program = nnc.load(spec)
    nodes = program.models["M"].nodes
    assert len(nodes) == (links if op == "|>" else 1)
    if op == "+":
        assert len(nodes[0].inputs) == links + 1


def test_chain_printing_keeps_the_parentheses() -> None:
    from nnc.dsl.parser import parse_file

    for text in ["x |> relu |> dense(3)", "(x |> relu) + y + (z |> tanh) |> relu", "x + y + z"]:
        tree = parse_file("model M { input x: [2]  y = " + text + " }")
        assert expr_text(tree.items[0].body[1].value) == text


def test_the_regenerate_comment_is_shell_quoted(tmp_path: Path) -> None:
    from nnc.backends.codegen import header

    program = nnc.parse("model M { input x: [4]  dense(3) }")
    lines = header("x;touch PWNED;.nn", program.models["M"], "numpy")
    assert lines[-1] == "#     nnc compile 'x;touch PWNED;.nn' --backend numpy --model M"


# -- models that use models: the cost follows the text, not the unfolded call tree --


def _model_chain(levels: int, calls: int = 1, kind: str = "model") -> str:
    """``levels`` definitions, each using the previous one ``calls`` times in a row."""
    prefix = "M" if kind == "model" else "B"
    out = [f"{kind} {prefix}0 {{\n    input x: [4]\n    dense(4)\n}}\n"]
    for i in range(1, levels):
        uses = " ".join([f"{prefix}{i - 1}"] * calls)
        out.append(f"{kind} {prefix}{i} {{\n    input x: [4]\n    {uses}\n}}\n")
    if kind == "block":
        out.append(f"model M {{\n    input x: [4]\n    {prefix}{levels - 1}\n}}\n")
    return "".join(out)


def test_a_thousand_chained_models_check_and_unfold() -> None:
    """1,000 models, each calling the previous one (a pydantic ValidationError from a
    RecursionError before: past about 700 models)."""
    from nnc.ir.passes import count_params, inline_calls

    started = time.perf_counter()
    program = nnc.parse(_model_chain(1000))
    assert count_params(program, "M999") == 4 * 4 + 4
    flat = inline_calls(program, "M999")
    assert len(flat.nodes) == 1
    assert flat.nodes[0].name == ".".join(f"m{i}_1" for i in range(998, -1, -1)) + ".dense_1"
    assert time.perf_counter() - started < 10  # about 0.5 s; quadratic took 20 s


def test_doubled_model_calls_are_refused_at_the_call_that_passes_the_limit() -> None:
    """31 models, each calling the previous one twice, unfold to 2**30 nodes: refused at
    once (it took exponential time: 20 levels 1.7 s, 31 levels never finished)."""
    started = time.perf_counter()
    with pytest.raises(ResourceError) as info:
        nnc.parse(_model_chain(31, calls=2))
    assert time.perf_counter() - started < 5
    err = info.value
    # M17 = M16 M16 is the first to unfold to 2**17 > 100,000 nodes; its second call
    # (line 71, column 9) passes the limit.
    assert (err.span.line, err.span.col) == (71, 9)
    assert "model 'M17' would unfold to more than 100,000 nodes" in str(err)
    assert "the call of model 'M16' (65,536 nodes unfolded)" in str(err)


def test_doubled_model_calls_under_the_limit_still_check() -> None:
    from nnc.ir.passes import inline_calls

    program = nnc.parse(_model_chain(12, calls=2))  # M11 unfolds to 2**11 dense layers
    assert nnc.count_params(program, "M11") == 2**11 * 20
    assert len(inline_calls(program, "M11").nodes) == 2**11


def test_doubled_block_instances_are_refused_before_they_are_expanded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Blocks using the previous block twice: the instance in M (2**19 nodes) is refused
    at its line and column, before expanding it (the 100,000-node limit caught it only
    after expanding 100,000 nodes: 5 to 18 s)."""
    spec = tmp_path / "blocks.nn"
    spec.write_text(_model_chain(20, calls=2, kind="block"))
    started = time.perf_counter()
    code, _, err = run_nnc(capsys, "check", str(spec))
    assert time.perf_counter() - started < 5
    assert code == 1
    assert f"{spec}:83:5: error: model 'M' would have more than 100,000 nodes: this " in err
    assert "instance of block 'B19' unfolds to at least 524,288" in err


# -- one definition of a line: "\n" ---------------------------------------------------

SEPARATORS = ["\u2028", "\u2029", "\x0b", "\x0c", "\x85"]


def assert_span_inside(err: NncError, text: str) -> None:
    """An error's span lies inside the text, lines counted at "\\n" only."""
    assert err.span is not None
    lines = text.split("\n")
    assert 1 <= err.span.line <= len(lines), (err.span, len(lines))
    assert 1 <= err.span.col <= len(lines[err.span.line - 1]) + 1, err.span


@pytest.mark.parametrize("sep", SEPARATORS)
def test_a_line_separator_in_a_comment_does_not_move_the_end_of_file(sep: str) -> None:
    """``model M { # <sep> x`` reported line 2, column 3: past the end of the file."""
    text = f"model M {{ # {sep} x\n"
    with pytest.raises(NncError) as info:
        nnc.parse(text)
    assert_span_inside(info.value, text)
    assert (info.value.span.line, info.value.span.col) == (1, 16)


@pytest.mark.parametrize("sep", SEPARATORS)
def test_the_error_display_quotes_the_line_of_the_span(sep: str) -> None:
    """After a separator in a comment, the display quoted the line before."""
    text = f"model M {{\n    # a{sep}b\n    input x: [4]\n    dense(4) foo\n}}\n"
    with pytest.raises(NncError) as info:
        nnc.parse(text)
    shown = info.value.render(text).splitlines()
    assert shown[0] == "<string>:4:14: error: unknown layer 'foo'"
    assert shown[1] == "    4 |     dense(4) foo"
    assert shown[2] == "      |              ^^^"


def test_the_editor_finds_words_by_the_same_lines() -> None:
    from nnc.lsp.analysis import word_at

    text = "model M {\n    # a\u2028b\n    input x: [4]\n    dense(4) relu\n}\n"
    assert word_at(text, 4, 15) == "relu"


# -- names nnc prints on success are escaped as in its errors -----------------------


def test_success_messages_escape_the_file_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``check ... ok`` and ``compile ... wrote`` passed terminal escapes through."""
    spec = tmp_path / "e\x1b[31mred.nn"
    spec.write_text("model M {\n    input x: [4]\n    dense(4)\n}\n")
    code, out, _ = run_nnc(capsys, "check", str(spec))
    assert code == 0 and "\x1b" not in out
    assert out == f"{tmp_path}/e\\x1b[31mred.nn: ok (1 model, 0 recipes)\n"
    target = tmp_path / "o\x1b]0;title\x07.py"
    code, out, err = run_nnc(capsys, "compile", str(spec), "-o", str(target))
    assert code == 0 and "\x1b" not in err + out and "\x07" not in err
    assert err == f"wrote {tmp_path}/o\\x1b]0;title\\x07.py\n"
    code, out, _ = run_nnc(capsys, "fmt", str(spec), "--check")
    assert "\x1b" not in out


# -- every setting's type: strings only where a file name or a column goes ----------

RECIPE = (
    "model M {{\n    input x: [64]\n    dense(10)\n}}\n"
    "train M {{\n    data digits, scale = unit\n    validation 0.2\n    loss cross_entropy\n"
    "    metrics accuracy\n    {extra}\n}}\n"
)


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (
            "block b(c) {\n    input x: [4]\n    dense(4)\n}\n"
            'model M {\n    input x: [4]\n    b("hello")\n}\n',
            (7, 7),
            "block 'b': argument 'c' expects a number, a name or a list; strings are for "
            'file names in train recipes. Received: "hello"',
        ),
        (
            'model M {\n    input x: [1, 8, 8]\n    conv2d(4, kernel = 3, padding = "same")\n}\n',
            (3, 37),
            "conv2d: argument 'padding' expects",
        ),
        (
            RECIPE.format(extra='early_stopping monitor = "val_loss"'),
            (10, 30),
            "early_stopping: argument 'monitor' expects a name. Received: monitor=\"val_loss\"",
        ),
        (
            RECIPE.format(extra="early_stopping monitor = bogus"),
            (10, 5),
            "early_stopping monitors 'bogus', which this recipe does not measure. Measured: "
            "loss, accuracy, val_loss, val_accuracy",
        ),
        (
            RECIPE.format(extra="seed 0").replace("scale = unit", 'scale = "unit"'),
            (6, 26),
            "data set: argument 'scale' expects one of none, unit, symmetric. "
            'Received: scale="unit"',
        ),
    ],
)
def test_strings_and_names_are_checked_where_a_setting_takes_them(
    text: str, where: tuple[int, int], message: str
) -> None:
    with pytest.raises(NncError) as info:
        nnc.parse(text)
    assert (info.value.span.line, info.value.span.col) == where
    assert message in info.value.message


def test_file_names_and_columns_still_take_strings() -> None:
    program = nnc.parse(
        RECIPE.format(extra="seed 0").replace(
            "data digits, scale = unit", 'data "train.csv", label = "the label"'
        ),
        check=False,
    )
    data = program.recipes["M"].data
    assert (data.path, data.label) == ("train.csv", "the label")


# -- values that do not fit float32 ---------------------------------------------------

TWO = "model M {\n    input x: [2]\n    dense(2)\n}\n"


def _weights(tmp_path: Path, value: float, dtype: type) -> Path:
    import numpy as np

    path = tmp_path / "w.npz"
    np.savez(
        path,
        **{"dense_1.weight": np.full((2, 2), value, dtype), "dense_1.bias": np.zeros(2, dtype)},
    )
    return path


def test_weights_beyond_float32_are_refused(tmp_path: Path) -> None:
    """1e300 became inf in the float32 cast (a NumPy overflow warning, then 'holds NaN
    or infinite values')."""
    import numpy as np

    from nnc.errors import WeightsError
    from nnc.ir.weights import check_weights

    program = nnc.parse(TWO)
    weights = dict(np.load(_weights(tmp_path, 1e300, np.float64)))
    with pytest.raises(WeightsError) as info:
        check_weights(program, "M", weights, source="w.npz")
    assert info.value.message == (
        "w.npz: tensor 'dense_1.weight' holds 1e+300, which does not fit float32 (largest "
        "finite value 3.4028235e+38); nnc runs every model in float32"
    )


def test_predict_refuses_outputs_that_overflow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Weights of 3e38 fit float32, but the outputs overflow: predict wrote inf rows."""
    import numpy as np

    spec = tmp_path / "m.nn"
    spec.write_text(TWO)
    samples = tmp_path / "in.csv"
    samples.write_text("a,b\n1,1\n0,0\n1,1\n")
    out = tmp_path / "out.csv"
    weights = _weights(tmp_path, 3e38, np.float32)
    code, _, err = run_nnc(
        capsys, "predict", str(spec), "--weights", str(weights), "-i", str(samples), "-o", str(out)
    )
    assert code == 1 and not out.exists()
    assert (
        "error: the outputs of 2 of 3 samples are not finite (first: sample 1): the output of "
        "layer 'dense_1' (dense) is the first non-finite value" in err
    )


def test_a_spec_number_beyond_float32_is_refused_at_its_column() -> None:
    with pytest.raises(ArgumentError) as info:
        nnc.parse("model M {\n    input x: [2]\n    dense(2, init = constant(1e308))\n}\n")
    assert (info.value.span.line, info.value.span.col) == (3, 30)
    assert info.value.message == "1e308 does not fit float32 (largest finite value 3.4028235e+38)"


# -- an exploding (still finite) loss is a divergence --------------------------------


@pytest.mark.parametrize("backend", ["numpy", "torch", "tensorflow"])
def test_an_exploding_loss_stops_the_run(backend: str, tmp_path: Path) -> None:
    """digits_mlp with sgd(lr = 1e6): the loss stays finite (1e11 at step 2, 1e20 to
    1e30 later) and the run went on to chance accuracy with exit 0. Now the step whose
    loss passes 1e6 times the first step's stops it, as a non-finite loss does."""
    import re

    from nnc.errors import TrainingError
    from nnc.train import RunOptions, train
    from tests.conftest import EXAMPLES, require

    if backend != "numpy":
        require(backend)
    text = (EXAMPLES / "digits_mlp.nn").read_text()
    text = text.replace("adam(lr = 0.002)", "sgd(lr = 1e6)").replace("epochs     30", "epochs 2")
    with pytest.raises(TrainingError) as info:
        train(nnc.parse(text), options=RunOptions(backend=backend, save=False))
    assert re.fullmatch(
        r"the loss exploded to \S+, more than 1e\+06 times the first step's 2\.\d+ at "
        r"epoch 1, step 2 \(batch 2 of 45\) with learning rate 1e\+06: every layer's output "
        r"is finite; the largest magnitude is \S+, in 'dense_2'; training stopped and no "
        r"checkpoint was written",
        info.value.message,
    ), info.value.message
    assert info.value.hint == "lower the learning rate (try lr = 100000) or standardise the inputs"


def test_a_loss_that_only_grows_a_little_is_no_explosion(tmp_path: Path) -> None:
    """The rule leaves ordinary runs alone: xor's sse loss, 200 epochs at lr 0.5."""
    from nnc.train import RunOptions, train
    from tests.conftest import EXAMPLES

    text = (EXAMPLES / "xor.nn").read_text().replace("epochs    5000", "epochs 200")
    result = train(nnc.parse(text), options=RunOptions(save=False))
    assert result.stopped == "completed"


def test_retyping_symbolic_models_is_bounded_and_memoised() -> None:
    """A chain of models with a symbolic input, called with a concrete one, is retyped
    once per model and input types; past 200 levels a ResourceError, not a
    RecursionError (past about 450 levels before)."""

    def spec(levels: int, calls: int) -> str:
        out = ["model M0 {\n    input x: [t]\n    relu\n}\n"]
        for i in range(1, levels):
            uses = " ".join([f"M{i - 1}"] * calls)
            out.append(f"model M{i} {{\n    input x: [t]\n    {uses}\n}}\n")
        out.append(f"model Top {{\n    input x: [4]\n    M{levels - 1}\n}}\n")
        return "".join(out)

    program = nnc.parse(spec(16, calls=2))  # 2**15 relus, each level retyped once
    assert program.models["Top"].nodes[0].outs[0].shape == (4,)
    assert nnc.parse(spec(250, calls=1)).models["Top"].nodes[0].outs[0].shape == (4,)
    with pytest.raises(ResourceError, match="retype symbolic inputs nest more than 300 deep"):
        nnc.parse(spec(600, calls=1))
