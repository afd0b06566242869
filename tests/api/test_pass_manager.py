"""The pass manager and ``nnc opt``: passes by name and with options, verification
after each pass, weights rewritten along, and the CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc import passes
from nnc.errors import ArgumentError, NameResolutionError, RewriteError
from nnc.ir.weights import read_weights_file, save_npz, save_safetensors
from tests.api.helpers import TOLERANCE, batch, max_deviation, trained_like
from tests.conftest import EXAMPLES, run_nnc


def test_run_passes_in_order_with_weights() -> None:
    p = nnc.load(EXAMPLES / "resnet_block.nn")
    w = trained_like(p, "ResNet")
    result = passes.run(
        p,
        [
            "fold-batchnorm",
            passes.get("freeze", nodes=["residual_1_*"]),
            passes.get("rename", names={"dense_1": "classifier", "ResNet": "Res"}),
        ],
        weights=w,
    )
    q, w2 = result
    assert "batchnorm" not in [n.op for n in q.models["Res"].nodes]
    assert q.models["Res"].node("residual_1_conv2d_2").trainable is False  # type: ignore[union-attr]
    assert "classifier.weight" in w2  # type: ignore[operator]
    assert [e.source for e in result.applied] == ["fold-batchnorm"] * 4 + ["freeze"] * 2 + [
        "rename"
    ] * 2
    assert max_deviation((p, "ResNet", w), (q, "Res", w2), batch(p, "ResNet")) < TOLERANCE  # type: ignore[arg-type]


def test_a_pass_that_produces_invalid_ir_is_reported_by_name() -> None:
    def detach_output(program: nnc.Program, weights: object, model: str | None = None):  # type: ignore[no-untyped-def]
        m = program.model()
        return program.model_copy(
            update={"models": {m.name: m.model_copy(update={"outputs": ("gone",)})}}
        )

    p = nnc.load(EXAMPLES / "xor.nn")
    with pytest.raises(
        RewriteError,
        match="pass 'detach_output' produced invalid IR: model 'Xor' outputs undefined name 'gone'",
    ):
        passes.run(p, ["strip-dropout", detach_output])
    # without verification the broken program passes through, unchecked
    broken = passes.run(p, [detach_output], verify_each=False).program
    assert broken.model().outputs == ("gone",)


def test_a_pass_that_breaks_the_weights_is_reported_by_name() -> None:
    def forget_a_bias(program: nnc.Program, weights, model=None):  # type: ignore[no-untyped-def]
        return program, {k: v for k, v in weights.items() if k != "dense_1.bias"}

    p = nnc.load(EXAMPLES / "xor.nn")
    with pytest.raises(
        RewriteError,
        match="pass 'forget_a_bias' produced weights that do not "
        "fit: its weights is missing tensor",
    ):
        passes.run(p, [forget_a_bias], weights=trained_like(p, "Xor"))


def test_unknown_passes_and_options() -> None:
    with pytest.raises(NameResolutionError, match="unknown pass 'strip-dropuot'") as err:
        passes.get("strip-dropuot")
    assert err.value.hint == "did you mean 'strip-dropout'?"
    with pytest.raises(ArgumentError, match="pass 'freeze' needs option"):
        passes.get("freeze")
    with pytest.raises(ArgumentError, match="pass 'extract' has no option 'begin'"):
        passes.get("extract", begin="x", start="x", end="y")


def test_cli_opt_folds_and_strips_with_weights(tmp_path: Path) -> None:
    p = nnc.load(EXAMPLES / "resnet_block.nn")
    w = trained_like(p, "ResNet")
    save_npz(tmp_path / "w.npz", w)
    out, w_out = tmp_path / "folded.nn", tmp_path / "folded.safetensors"
    run = run_nnc(
        "opt",
        str(EXAMPLES / "resnet_block.nn"),
        "--pass",
        "fold-batchnorm",
        "--pass",
        "strip-dropout",
        "--pass",
        "replace-activation:old=relu,new=leaky_relu,alpha=0.1",
        "-o",
        str(out),
        "--weights",
        str(tmp_path / "w.npz"),
        "--weights-out",
        str(w_out),
    )
    assert run.returncode == 0, run.stderr
    assert "fold-batchnorm: applied at 4 place(s)" in run.stderr
    assert "strip-dropout: applied at 0 place(s)" in run.stderr
    q = nnc.load(out)
    assert {n.op for n in q.model().nodes} == {
        "conv2d",
        "leaky_relu",
        "add",
        "global_avg_pool",
        "dense",
    }
    w2 = read_weights_file(w_out)
    folded, _ = nnc.rewrite.fold_batchnorm(p, w)
    swapped, _ = nnc.rewrite.replace_activation(folded, "relu", "leaky_relu", alpha=0.1)
    assert q == swapped
    assert all(
        np.array_equal(w2[k], v) for k, v in nnc.rewrite.fold_batchnorm(p, w).weights.items()
    )  # type: ignore[union-attr]


def test_cli_opt_options_and_errors(tmp_path: Path) -> None:
    run = run_nnc(
        "opt",
        str(EXAMPLES / "digits_cnn.nn"),
        "--pass",
        "extract:start=flatten_1,end=dense_2,name=Head",
        "--pass",
        "set-input-shape:shape=[128]",
        "--pass",
        "insert-after:after=dense_1,layer=dropout(rate = 0.5)",
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("model Head {\n    input flatten_1: [128]\n    dense(64")
    assert "    dropout(0.5, name = dropout_2) relu(name = relu_3)\n" in run.stdout
    bad = run_nnc("opt", str(EXAMPLES / "xor.nn"), "--pass", "freeze:nodes=[sigmoid_1]")
    assert bad.returncode == 1
    assert "error: freeze: node 'sigmoid_1' (sigmoid) has no parameters" in bad.stderr
    alone = run_nnc("opt", str(EXAMPLES / "xor.nn"), "--pass", "strip-dropout", "--weights", "w")
    assert alone.returncode == 1 and "--weights and --weights-out go together" in alone.stderr


def test_cli_opt_help_lists_the_passes() -> None:
    run = run_nnc("opt", "--help")
    assert run.returncode == 0
    for name in passes.REGISTRY:
        assert f"\n  {name}" in run.stdout


def test_importing_nnc_imports_no_framework() -> None:
    import subprocess

    code = (
        "import sys, nnc, nnc.passes, nnc.rewrite, nnc.api, nnc.builder\n"
        "b = nnc.Builder('M'); b.input('x', [2]); b.dense(1); p = b.build()\n"
        "nnc.passes.run(p, ['strip-dropout'])\n"
        "print(sorted(m for m in ('torch', 'tensorflow', 'onnx', 'onnxruntime', 'keras')"
        " if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=EXAMPLES.parent,
        check=True,
    )
    assert out.stdout.strip() == "[]"


def test_cli_opt_takes_a_run_folder_as_eval_does(tmp_path: Path) -> None:
    # Issue 17: `nnc opt --weights RUN_FOLDER` failed with "[Errno 21] Is a directory"
    # while eval, predict and export accept a run folder; opt now resolves W the same way.
    p = nnc.load(EXAMPLES / "resnet_block.nn")
    w = trained_like(p, "ResNet")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    save_safetensors(run_dir / "weights.safetensors", w)
    w_out = tmp_path / "folded.safetensors"
    run = run_nnc(
        "opt",
        str(EXAMPLES / "resnet_block.nn"),
        "--pass",
        "fold-batchnorm",
        "-o",
        str(tmp_path / "folded.nn"),
        "--weights",
        str(run_dir),
        "--weights-out",
        str(w_out),
    )
    assert run.returncode == 0, run.stderr
    expected = nnc.rewrite.fold_batchnorm(p, w).weights
    assert expected is not None
    got = read_weights_file(w_out)
    assert got.keys() == expected.keys()
    assert all(np.array_equal(got[k], v) for k, v in expected.items())
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = run_nnc(
        "opt",
        str(EXAMPLES / "xor.nn"),
        "--pass",
        "strip-dropout",
        "--weights",
        str(empty),
        "--weights-out",
        str(tmp_path / "x.safetensors"),
    )
    assert missing.returncode == 1, missing.stderr
    assert "holds neither weights.safetensors nor a readable checkpoint" in missing.stderr
    # nnc reads an .npz of earlier versions but writes safetensors only.
    npz = run_nnc(
        "opt",
        str(EXAMPLES / "xor.nn"),
        "--pass",
        "strip-dropout",
        "--weights",
        str(run_dir),
        "--weights-out",
        str(tmp_path / "x.npz"),
    )
    assert npz.returncode == 1, npz.stderr
    assert f"{tmp_path / 'x.npz'}: nnc writes weights as safetensors, not .npz" in npz.stderr
    assert not (tmp_path / "x.npz").exists()
