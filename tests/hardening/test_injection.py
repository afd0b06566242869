"""No code execution from a spec.

Names and strings from a spec reach generated Python code (numpy, torch,
tensorflow) and ONNX models. Every hostile one is either refused with a located
error (at parse time, by the builder, or by the emitters, which validate again) or
emitted inert: it appears only inside string literals and comments, and executing
every generated module in a fresh interpreter leaves no trace (a marker file the
payload would create never appears).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc.backends.codegen import CodeWriter
from nnc.cli.main import main
from nnc.errors import NameResolutionError, NncError, ParseError
from nnc.train import RunOptions, train
from tests.conftest import ROOT, require

PYTHON_BACKENDS = ("numpy", "torch", "tensorflow")

# name -> (error class, line, column) when the name is written into
# "    NAME = x |> dense(1)" on line 3 of a spec.
HOSTILE_NAMES = {
    "double_quote": ('a"b', ParseError, 3, 6),
    "single_quote": ("a'b", ParseError, 3, 6),
    "newline": ("x\nimport os", NameResolutionError, 3, 5),
    "carriage_return": ("x\rimport os", NameResolutionError, 3, 5),
    "dunder_import": ("__import__", NameResolutionError, 3, 5),
    "dunder_class": ("__class__", NameResolutionError, 3, 5),
    "cyrillic_e": ("d\u0435nse", ParseError, 3, 6),
    "fullwidth_d": ("\uff44ense", ParseError, 3, 5),
    "bidi_override": ("a\u202eb", ParseError, 3, 6),
    "python_keyword": ("class", NameResolutionError, 3, 5),
    "python_soft_keyword": ("match", NameResolutionError, 3, 5),
    "python_constant": ("None", NameResolutionError, 3, 5),
    "nnc_keyword": ("model", NameResolutionError, 3, 5),
    "call": ("os.system('x')", ParseError, 3, 7),
    "braces": ("{x}", ParseError, 3, 5),
}


@pytest.mark.parametrize("case", list(HOSTILE_NAMES))
def test_hostile_name_in_a_spec_is_a_located_error(case: str) -> None:
    name, cls, line, col = HOSTILE_NAMES[case]
    source = f"model M {{\n    input x: [2]\n    {name} = x |> dense(1)\n    output {name}\n}}\n"
    with pytest.raises(NncError) as info:
        nnc.parse(source, "t.nn")
    err = info.value
    assert type(err) is cls, err.render()
    assert err.span is not None and (err.span.file, err.span.line, err.span.col) == (
        "t.nn",
        line,
        col,
    )
    rendered = err.render()
    assert rendered.startswith(f"t.nn:{line}:{col}: error: ")
    assert "\r" not in rendered and "\u202e" not in rendered  # shown escaped


BUILDER_NAMES = [v[0] for v in HOSTILE_NAMES.values()] + ["a\x00b", "a b", "", "x" * 200]


@pytest.mark.parametrize("name", BUILDER_NAMES, ids=repr)
def test_hostile_name_through_the_builder_is_refused(name: str) -> None:
    with pytest.raises(NncError, match="model name"):
        nnc.Builder(name)
    b = nnc.Builder("M")
    with pytest.raises(NncError):
        b.input(name, [2])
    x = b.input("x", [2])
    with pytest.raises(NncError):
        b.dense(x, 1, name=name or "   ")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        # A symbolic dim is only ever written as a string literal, but it must be
        # ASCII to read back as .nn text.
        with pytest.raises(NncError):
            b.input("y", [name, 2])


def _edited(name: str, where: str) -> nnc.Program:
    """examples/xor.nn, typed, with one name replaced in Python (not through the
    builder or the parser, so nothing has validated it yet)."""
    program = nnc.load(ROOT / "examples" / "xor.nn")
    model = program.models["Xor"]
    recipe = program.recipes["Xor"]
    if where == "node":
        first, second, *rest = model.nodes
        nodes = (
            first.model_copy(update={"name": name}),
            second.model_copy(update={"inputs": (name,)}),
            *rest,
        )
        model = model.model_copy(update={"nodes": nodes})
    elif where == "input":
        first, *rest = model.nodes
        model = model.model_copy(
            update={
                "inputs": (model.inputs[0].model_copy(update={"name": name}),),
                "nodes": (first.model_copy(update={"inputs": (name,)}), *rest),
            }
        )
    else:
        model = model.model_copy(update={"name": name})
        recipe = recipe.model_copy(update={"model": name})
    return nnc.Program(models={model.name: model}, recipes={recipe.name: recipe})


INJECTION = 'Xor\nimport os; os.system("touch pwned")\n#'


@pytest.mark.parametrize("where", ["model", "node", "input"])
@pytest.mark.parametrize("name", [INJECTION, "X\u043er", "__import__", "class", 'a"""b'], ids=repr)
def test_every_emitter_validates_a_program_edited_in_python(name: str, where: str) -> None:
    """A typed program is validated again by every emitter (the NumPy and
    TensorFlow emitters once trusted typed programs: a model name holding a newline
    went into the header comment of the generated NumPy module as code)."""
    require("onnx")
    program = _edited(name, where)
    line = {"model": 5, "node": 7, "input": 6}[where]
    for backend in (*PYTHON_BACKENDS, "onnx"):
        with pytest.raises(NameResolutionError) as info:
            nnc.emit(program, backend)
        span = info.value.span
        assert span is not None and span.line == line, (backend, info.value)
        assert "\n" not in info.value.render().splitlines()[0]


def test_docstring_text_cannot_close_the_docstring() -> None:
    for text in ('ends with a quote"', 'three """ quotes', "a backslash \\", 'two\nlines"'):
        w = CodeWriter()
        w.docstring(text)
        tree = ast.parse(w.render())
        assert isinstance(tree.body[0], ast.Expr)
        assert tree.body[0].value.value.rstrip("\n") == text  # type: ignore[attr-defined]


# -- strings carrying Python: emitted inert ----------------------------------------------

# Relative: the generated modules run with the test's folder as working directory.
PAYLOAD = "__import__('os').system('touch MARKER')"

HOSTILE_SPEC = """\
# {payload}
model Evil {{
    input x: [2]
    dense(3) tanh
    dense(1) sigmoid
}}

train Evil {{
    data      "x'); {payload}; ('\\"); {payload} #\\n{payload}\\n#.csv",
              label = "y\\"); {payload} #"
    loss      binary_cross_entropy
    optimizer sgd(lr = 0.1)
    epochs    2
    seed      1
}}
"""


def _names(code: str) -> set[str]:
    used = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, ast.Attribute):
            used.add(node.attr)
    return used


def _inert(code: str, benign: str | None = None) -> None:
    """The payload survives only as data: the module's syntax tree uses exactly the
    names and attributes of the module generated from the same spec without it (the
    generated torch code itself uses ``os``, for ``os.environ``); without that module,
    none of the payload's names."""
    used = _names(code)
    if benign is not None:
        expected = _names(benign)
        assert used == expected, (used - expected, expected - used)
    assert not used & {"__import__", "system", "os"} - (_names(benign) if benign else set())


def test_strings_carrying_python_are_emitted_inert(tmp_path: Path) -> None:
    """A data path, a label and a source path (the file name written in each
    header) that carry Python: the generated modules of every backend hold them as
    string literals or escaped comments; running those modules in a fresh
    interpreter (import, build the Runtime or the model, run forward) creates no marker file."""
    require("torch")
    require("tensorflow")
    require("onnx")
    marker = tmp_path / "MARKER"
    payload = PAYLOAD
    # The spec's own file name carries the payload too (quotes and newlines included).
    spec = tmp_path / f"x\n{payload}\n'\"#.nn"
    spec.write_text(HOSTILE_SPEC.format(payload=payload), encoding="utf-8")
    program = nnc.load(spec)
    recipe = program.recipes["Evil"]
    assert payload in recipe.data.path and payload in (recipe.data.label or "")  # type: ignore[union-attr]

    benign_spec = tmp_path / "benign.nn"
    benign_spec.write_text(HOSTILE_SPEC.format(payload="x"), encoding="utf-8")
    modules = []
    for backend in PYTHON_BACKENDS:
        out = tmp_path / f"{backend}_module.py"
        assert main(["compile", str(spec), "--backend", backend, "-o", str(out)]) == 0
        code = out.read_text(encoding="utf-8")
        assert code.startswith("# Generated by nnc"), code[:200]
        _inert(code, nnc.emit(nnc.load(benign_spec), backend))
        modules.append(out)
    onnx_file = tmp_path / "evil.onnx"
    assert main(["compile", str(spec), "--backend", "onnx", "-o", str(onnx_file)]) == 0

    runner = textwrap.dedent(
        """
        import importlib.util, sys
        import numpy as np
        for path in sys.argv[2:]:
            spec = importlib.util.spec_from_file_location("generated", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            if hasattr(module, "Runtime"):
                out = module.Runtime().forward(np.zeros((2, 2), np.float32))
            elif hasattr(module, "initial_weights"):  # numpy: the model on its weights
                out = module.Evil(module.initial_weights()).forward(np.zeros((2, 2), np.float32))
            elif hasattr(module, "tf"):  # a keras.Model, which nnc's adapter wraps
                out = module.Evil()(module.tf.zeros((2, 2))).numpy()
            else:  # torch: a plain nn.Module, which nnc's runtime adapter wraps
                import torch
                out = module.Evil()(torch.zeros(2, 2)).detach().numpy()
            assert np.asarray(out).shape == (2, 1), out
        import onnx, onnxruntime
        model = onnx.load(sys.argv[1])
        props = {p.key: p.value for p in model.metadata_props}
        assert "__import__" in props["nnc.source"]
        session = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
        session.run(None, {"x": np.zeros((2, 2), np.float32)})
        print("ran", len(sys.argv) - 2, "modules and the onnx model")
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", runner, str(onnx_file), *map(str, modules)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ran 3 modules and the onnx model" in done.stdout
    assert not marker.exists()

    # Training with it fails cleanly on the missing file, naming the path as data.
    with pytest.raises(NncError) as info:
        train(program, options=RunOptions(save=False, base=tmp_path))
    assert "no such data file" in info.value.message and payload in info.value.message
    assert not marker.exists()


# -- names that shadow Python and generated names compile to the same model ----------------

SHADOWS = [
    *("np", "torch", "tf", "F", "nn", "math", "zlib", "self", "w", "len", "int", "float"),
    *("range", "print", "exec", "eval", "open", "super", "getattr", "isinstance", "Runtime"),
    *("PARAMETERS", "TRAINABLE", "initial_weights", "learning_rate", "fit", "compute_loss"),
    *("make_optimizer", "cache", "grads", "training", "input_gradients", "as_batch"),
    *("InputError", "TrainingError", "contextlib", "sigmoid", "relu", "softmax", "weights"),
    "generator",
]
LAYERS = ("dense(4)", "tanh", "sigmoid", "relu")


def _shadowing(names: list[str]) -> nnc.Program:
    """A graph whose input and nodes carry ``names``: a chain of dense layers and
    activations, where every fifth value adds two earlier ones (values used twice)."""
    lines = [f"    input {names[0]}: [3]", f"    {names[1]} = {names[0]} |> dense(4)"]
    for i, name in enumerate(names[2:], start=2):
        if i % 5 == 0:
            lines.append(f"    {name} = {names[i - 1]} + {names[i - 3]}")
        else:
            lines.append(f"    {name} = {names[i - 1]} |> {LAYERS[i % len(LAYERS)]}")
    lines.append(f"    output {names[-1]} |> dense(2)")
    body = "\n".join(lines)
    return nnc.parse(
        f'model Shadow {{\n{body}\n}}\ntrain Shadow {{\n    data "unused.csv"\n'
        "    loss mse\n    optimizer adam(lr = 0.01)\n}\n"
    )


@pytest.mark.parametrize("backend", PYTHON_BACKENDS)
def test_names_that_shadow_python_or_generated_names_compute_the_same(backend: str) -> None:
    """Valid names such as np, self, len, print, Runtime or fit (an input, nodes and
    so parameters) never shadow what the generated code uses: forward, gradients and
    a training step equal those of the same graph with plain names (float64 NumPy)."""
    if backend != "numpy":
        require(backend)
    plain_program = _shadowing([f"v{i}" for i in range(len(SHADOWS))])
    program = _shadowing(SHADOWS)
    plain_names = [p.name for p in nnc.model_params(plain_program, "Shadow")]
    names = [p.name for p in nnc.model_params(program, "Shadow")]
    assert len(names) == len(plain_names) == 2 * 10
    plain = nnc.runtime(plain_program, "numpy", dtype="float64")
    weights = plain.get_weights()
    rt = nnc.runtime(
        program, backend, weights={n: weights[p] for n, p in zip(names, plain_names, strict=True)}
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3)).astype(np.float32)
    y = rng.normal(size=(5, 2)).astype(np.float32)
    np.testing.assert_allclose(rt.forward(x), plain.forward(x), rtol=1e-5, atol=1e-6)
    want, got = plain.gradients(x, y), rt.gradients(x, y)
    for name, plain_name in zip(names, plain_names, strict=True):
        np.testing.assert_allclose(got[name], want[plain_name], rtol=1e-4, atol=1e-6)
    assert rt.train_step(x, y, 0.01) == pytest.approx(plain.train_step(x, y, 0.01), rel=1e-5)


# -- values and terminal output ----------------------------------------------------------


def test_non_finite_numbers_never_reach_the_ir() -> None:
    """Every value is emitted with repr; a non-finite one would be written as the
    bare name inf. The parser already refuses 1e400; the IR itself refuses NaN and
    infinities from the builder and from JSON."""
    b = nnc.Builder("M")
    x = b.input("x", [2])
    with pytest.raises(NncError, match=r"'alpha' input should be a finite number"):
        b.layer("leaky_relu", x, alpha=float("inf"))
    text = nnc.load(ROOT / "examples" / "xor.nn").to_json().replace('"lr": 0.5', '"lr": NaN')
    with pytest.raises(NncError, match=r"optimizer\.sgd\.lr: Input should be a finite number"):
        nnc.loads_json(text)


def test_control_characters_are_shown_escaped() -> None:
    """A spec holding terminal escape sequences cannot rewrite the user's terminal
    through nnc's error report; the caret still points at the offending character."""
    source = "model M {\n    input x: [2]  # \x1b]0;owned\x07\n    dense(1) \x1b[2J\n}\n"
    with pytest.raises(ParseError) as info:
        nnc.parse(source, "t.nn")
    assert info.value.render().splitlines() == [
        "t.nn:3:14: error: unexpected character '\\x1b'",
        "    3 |     dense(1) \\x1b[2J",
        "      |              ^^^^",
    ]


def test_hostile_names_in_an_imported_onnx_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ONNX graph, node and input names are data from someone else's file: nnc import
    keeps a name only when it is a valid identifier, else writes its own, and quotes
    them escaped in its notes; the spec it writes checks and compiles inert."""
    require("onnx")
    require("onnxruntime")
    import onnx

    from nnc.backends import onnx as backend

    proto = onnx.load_from_string(backend.emit(nnc.load(ROOT / "examples" / "xor.nn")))
    hostile = [INJECTION, "a\x1b[2Jb", "x" * 300, "__import__"]
    proto.graph.name = INJECTION
    for node, name in zip(proto.graph.node, hostile, strict=False):
        node.name = name
    old = proto.graph.input[0].name
    proto.graph.input[0].name = "inp\n__import__('os').system('touch MARKER')"
    for node in proto.graph.node:
        node.input[:] = [proto.graph.input[0].name if i == old else i for i in node.input]
    model = tmp_path / "evil.onnx"
    model.write_bytes(proto.SerializeToString())
    spec = tmp_path / "evil.nn"
    assert main(["import", str(model), "-o", str(spec)]) == 0
    err = capsys.readouterr().err
    assert "\x1b" not in err and "note: graph input 'inp\\n__import__" in err
    # Every node name was refused (nnc's own names, so the stack form); the graph and
    # input names were reduced to identifiers that are only names.
    assert spec.read_text() == (
        "# Imported by nnc from evil.onnx.\n"
        "model XorImportOsOsSystemTouchPwned {\n"
        "    input inp___import___os_system_touch_MARKER: [2]\n"
        "    dense(5) sigmoid\n"
        "    dense(1) sigmoid\n"
        "}\n"
    )
    _inert(nnc.emit(nnc.load(spec), "numpy"))  # type: ignore[arg-type]
