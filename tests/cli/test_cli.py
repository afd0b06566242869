"""The nnc command line: exit codes, output formats, --help, start-up cost."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from nnc.errors import NncError
from tests.conftest import EXAMPLES, run_nnc

COMMANDS = ["check", "summary", "fmt", "ir", "compile"]


def test_check_ok_exit_0() -> None:
    result = run_nnc("check", str(EXAMPLES / "xor.nn"), str(EXAMPLES / "gan.nn"))
    assert result.returncode == 0, result.stderr
    assert "xor.nn: ok (1 model, 1 recipe)" in result.stdout
    assert "gan.nn: ok (2 models, 1 recipe)" in result.stdout


def test_check_user_error_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.nn"
    bad.write_text("model M {\n    input x: [1, 8, 8]\n    dense(3)\n}\n")
    result = run_nnc("check", str(bad))
    assert result.returncode == 1
    assert f"{bad}:3:5: error: dense: expects a vector" in result.stderr
    assert "    3 |     dense(3)" in result.stderr
    assert "^^^^^^^^" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_reports_every_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.nn"
    bad.write_text("model {")
    result = run_nnc("check", str(bad), str(EXAMPLES / "xor.nn"))
    assert result.returncode == 1
    assert "xor.nn: ok" in result.stdout
    assert "bad.nn:1:7: error" in result.stderr


def test_missing_file_is_a_user_error(tmp_path: Path) -> None:
    result = run_nnc("check", str(tmp_path / "nope.nn"))
    assert result.returncode == 1
    assert "no such file" in result.stderr


def test_usage_error_exit_2() -> None:
    assert run_nnc("check").returncode == 2
    assert run_nnc("frobnicate").returncode == 2
    assert run_nnc("summary", "x.nn", "--bogus").returncode == 2


@pytest.mark.parametrize("command", COMMANDS)
def test_help(command: str) -> None:
    result = run_nnc(command, "--help")
    assert result.returncode == 0
    assert f"usage: nnc {command}" in result.stdout


def test_summary_table() -> None:
    result = run_nnc("summary", str(EXAMPLES / "mlp_4_5_5_3.nn"))
    assert result.returncode == 0
    out = result.stdout
    assert "dense_1" in out and "[5]" in out
    assert "73" in out
    assert "parameter memory: 292 B" in out  # 73 float32 values


def test_summary_json() -> None:
    result = run_nnc("summary", str(EXAMPLES / "lenet5.nn"), "--json")
    data = json.loads(result.stdout)
    assert data["total_params"] == 61_706
    assert data["model"] == "LeNet5"
    assert [r["params"] for r in data["rows"] if r["params"]] == [156, 2416, 48120, 10164, 850]


def test_summary_model_flag() -> None:
    result = run_nnc("summary", str(EXAMPLES / "autoencoder.nn"), "--model", "Decoder", "--json")
    assert json.loads(result.stdout)["total_params"] == 8 * 32 + 32 + 32 * 64 + 64
    missing = run_nnc("summary", str(EXAMPLES / "autoencoder.nn"), "--model", "Decodr")
    assert missing.returncode == 1
    assert "did you mean 'Decoder'?" in missing.stderr


def test_fmt_check_and_rewrite(tmp_path: Path) -> None:
    messy = tmp_path / "m.nn"
    messy.write_text("model M{input x:[2] # in\ndense(5)sigmoid dense(1)}\n")
    check = run_nnc("fmt", "--check", str(messy))
    assert check.returncode == 1
    assert f"would reformat {messy}" in check.stdout
    assert run_nnc("fmt", str(messy)).returncode == 0
    assert messy.read_text() == (
        "model M {\n"
        "    input x: [2]                       # in\n"
        "    dense(5) sigmoid\n"
        "    dense(1)\n"
        "}\n"
    )
    assert run_nnc("fmt", "--check", str(messy)).returncode == 0


def test_fmt_examples_are_canonical() -> None:
    result = run_nnc("fmt", "--check", *map(str, sorted(EXAMPLES.glob("*.nn"))))
    assert result.returncode == 0, result.stdout


def test_ir_json_round_trips() -> None:
    import nnc

    result = run_nnc("ir", str(EXAMPLES / "resnet_block.nn"), "--json")
    assert result.returncode == 0
    assert nnc.loads_json(result.stdout) == nnc.load(EXAMPLES / "resnet_block.nn")


def test_ir_text_expands_blocks() -> None:
    result = run_nnc("ir", str(EXAMPLES / "resnet_block.nn"))
    assert "residual_1_conv2d_1 = conv2d(relu_1, 16, 3, padding = same)" in result.stdout


def test_check_imports_nothing_heavy() -> None:
    """`nnc check` must start fast (issue 23): no framework, no backend, no rich, no
    NumPy (a third of the start-up once: nothing on the check path computes with
    arrays), none of the other commands' modules (the CLI imports only the command it
    runs), none of nnc's own layers it does not use (the rewrite engine, the pass
    manager, the builder: `import nnc` once pulled them all in, a third of check's
    time; the language server, drawing, data, serialisation, weights). And what it
    imports it defers: no pydantic schema is built for the Model and Program
    containers (the Node union, every op's schema, was a fifth of the time) nor for
    an op the file does not use; the standard library is not parsed for a file that
    uses none of it; no entry point is read for pydantic plugins; the collector's
    thresholds and the environment are back as they were."""
    code = (
        "import gc, os, sys, time\n"
        "t = time.process_time()\n"
        "from nnc.cli.main import COMMANDS, main\n"
        "rc = main(['check', '-q', 'examples/digits_cnn.nn'])\n"
        "elapsed = time.process_time() - t\n"
        "heavy = ['torch', 'tensorflow', 'onnx', 'onnxruntime', 'rich', 'matplotlib', "
        "'numpy', 'scipy', 'pygments', 'nnc.backends', 'nnc.rewrite', 'nnc.passes', "
        "'nnc.builder', 'nnc.api', 'nnc.verify', 'nnc.train', 'nnc.data', 'nnc.lsp', "
        "'nnc.draw', 'nnc.notebook', 'nnc.search', 'nnc.ir.serialize', 'nnc.ir.weights', "
        "'nnc.dsl.highlight', 'nnc.dsl.unparse', 'nnc.cli.options', 'difflib', "
        "*(f'nnc.cli.{m}' for m in COMMANDS.values() if m != 'check')]\n"
        "loaded = sorted({h for h in heavy for m in sys.modules if m.startswith(h) and "
        "m[len(h) : len(h) + 1] in ('', '.')})\n"
        "from nnc.dsl.library import library_blocks\n"
        "from nnc.ir.ops import OPS\n"
        "from nnc.ir.program import Model, Program\n"
        "built = sorted(n for n, c in OPS.items() if c.__pydantic_complete__)\n"
        "deferred = [Model.__pydantic_complete__, Program.__pydantic_complete__]\n"
        "parsed = library_blocks.cache_info().currsize\n"
        "from pydantic.plugin import _loader\n"
        "scanned = [_loader._plugins, os.environ.get('PYDANTIC_DISABLE_PLUGINS')]\n"
        "print(rc, loaded, built, deferred, parsed, scanned, gc.get_threshold(), elapsed, "
        "sep='|')\n"
    )
    import subprocess

    from tests.conftest import ROOT

    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    rc, heavy, built, deferred, parsed, scanned, threshold, elapsed = out.split("|")
    assert rc == "0"
    assert heavy == "[]"
    assert built == str(["conv2d", "dense", "dropout", "flatten", "maxpool", "relu"])
    assert deferred == "[False, False]"
    assert parsed == "0"
    assert scanned == "[None, None]"  # no entry point read for pydantic plugins; env restored
    assert threshold == "(700, 10, 10)"
    assert float(elapsed) < 1.0  # CPU seconds, steadier than wall time: ~0.2 on this machine


def test_python_m_nnc_runs_the_cli() -> None:
    """`python -m nnc` is the `nnc` command (and `python -X importtime -m nnc check`
    profiles the start-up)."""
    import subprocess

    from tests.conftest import ROOT, nnc_env

    result = subprocess.run(
        [sys.executable, "-m", "nnc", "check", "examples/digits_cnn.nn"],
        cwd=ROOT,
        env=nnc_env(),
        capture_output=True,
        text=True,
    )
    assert (result.returncode, result.stdout) == (
        0,
        "examples/digits_cnn.nn: ok (1 model, 1 recipe)\n",
    )


def test_grammar_tables_are_fresh() -> None:
    """The cached LALR tables match grammar.lark (regenerate: scripts/regen_grammar_tables.py)."""
    from nnc.dsl.tables import (
        GRAMMAR,
        _decode_object,
        _encode,
        build_tables,
        grammar_hash,
        load_tables,
    )

    grammar = GRAMMAR.read_text(encoding="utf-8")
    assert load_tables(grammar) is not None, "stale: run python scripts/regen_grammar_tables.py"
    fresh = build_tables()
    assert fresh["grammar_sha256"] == grammar_hash(grammar)
    # the hook decodes what was encoded (tuples, int and tuple keys) and nothing else
    decoded = json.loads(json.dumps(fresh["data"]), object_hook=_decode_object)
    assert "__items__" not in str(decoded) and "__tuple__" not in str(decoded)
    assert _encode(decoded) == fresh["data"]


def test_stale_grammar_tables_are_not_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tables built from another grammar (or Lark version) are refused, and the parser
    is built from grammar.lark instead, with the same results and errors."""
    from nnc.dsl import parser, tables

    stale = json.loads(tables.TABLES.read_text(encoding="utf-8"))
    stale["grammar_sha256"] = "0" * 64
    (tmp_path / "tables.json").write_text(json.dumps(stale), encoding="utf-8")
    monkeypatch.setattr(tables, "TABLES", tmp_path / "tables.json")
    assert tables.load_tables(tables.GRAMMAR.read_text(encoding="utf-8")) is None

    def forget() -> None:  # the parser and the hints keyed by its LALR states
        parser._lark.cache_clear()
        parser._friendly_table.cache_clear()

    forget()
    try:
        tree = parser.parse_file("model M { input x: [2]  dense(1) }", "m.nn")
        assert (tree.items[0].name, len(tree.items[0].body)) == ("M", 2)
        with pytest.raises(NncError, match=r"m\.nn:1:19: unexpected '\['"):
            parser.parse_file("model M { input x [2] }", "m.nn")
    finally:
        forget()
