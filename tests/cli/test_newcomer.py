"""What a newcomer trying every command met (issue 17): each case failed before."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, run_nnc


def test_summary_shows_symbolic_shapes() -> None:
    # rich read "[t, 1]" as markup and printed an empty cell
    result = run_nnc("summary", str(EXAMPLES / "sequence_lstm.nn"))
    assert result.returncode == 0, result.stderr
    window = next(line for line in result.stdout.splitlines() if "window" in line)
    assert "[t, 1]" in window


def test_a_misspelt_argument_gets_did_you_mean_even_for_sugar(tmp_path: Path) -> None:
    spec = tmp_path / "a.nn"
    spec.write_text("model M {\n    input x: [4]\n    dense(3, activaton = softmax)\n}\n")
    result = run_nnc("check", str(spec))
    assert result.returncode == 1
    assert f"{spec}:3:14: error: dense has no argument 'activaton'" in result.stderr
    assert "activation, name" in result.stderr
    assert "hint: did you mean 'activation'?" in result.stderr


TWO_BROKEN_MODELS = """\
model A {
    input x: [4]
    dense(0)
}

model B {
    input y: [2, 2, 2]
    dense(3)
}

model C {
    input z: [4]
    A                                  # fails only because A does: no error of its own
}

train C {
    data      xor
    loss      mse
    optimizr  sgd(lr = 0.1)
}
"""


def test_check_reports_every_independent_error_in_source_order(tmp_path: Path) -> None:
    spec = tmp_path / "two.nn"
    spec.write_text(TWO_BROKEN_MODELS)
    result = run_nnc("check", str(spec))
    assert result.returncode == 1
    located = [
        line.split(": error: ")[0] for line in result.stderr.splitlines() if ": error: " in line
    ]
    assert located == [f"{spec}:3:11", f"{spec}:8:5", f"{spec}:19:5"]
    assert "unknown setting 'optimizr'" in result.stderr
    assert result.stderr.rstrip().endswith(f"{spec}: 3 errors")


def test_check_of_a_good_file_is_unchanged() -> None:
    result = run_nnc("check", str(EXAMPLES / "resnet_block.nn"))
    assert result.returncode == 0
    assert result.stdout == f"{EXAMPLES / 'resnet_block.nn'}: ok (1 model, 1 recipe)\n"


def test_epoch_lines_fit_the_terminal_and_the_best_mark_is_explained() -> None:
    import io

    import nnc
    from nnc.train import RunOptions, train
    from nnc.train.progress import RichReporter

    program = nnc.load(EXAMPLES / "digits_mlp.nn")
    for width in (80, 100, 120):
        out = io.StringIO()
        reporter = RichReporter(out)
        reporter.console.width = width
        train(program, options=RunOptions(epochs=2, save=False), reporter=reporter)
        lines = out.getvalue().splitlines()
        assert "* marks a new best val_loss" in out.getvalue()
        epochs = [ln for ln in lines if ln.startswith("epoch ")]
        assert len(epochs) == 2 and epochs[0].endswith("  *")
        assert all("val_accuracy" in ln for ln in epochs)
        # the run's own lines (the summary tables are sized by rich itself)
        assert max(len(ln) for ln in lines[: lines.index(epochs[-1]) + 1]) <= width


def test_plain_epoch_lines_keep_to_the_width_columns_states(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import io

    import nnc
    from nnc.train import RunOptions, train
    from nnc.train.progress import PlainReporter

    program = nnc.load(EXAMPLES / "digits_mlp.nn")
    widths = {}
    for columns in ("80", None):
        if columns is None:
            monkeypatch.delenv("COLUMNS", raising=False)
        else:
            monkeypatch.setenv("COLUMNS", columns)
        out = io.StringIO()
        train(program, options=RunOptions(epochs=2, save=False), reporter=PlainReporter(out))
        epochs = [ln for ln in out.getvalue().splitlines() if ln.startswith("epoch ")]
        widths[columns] = max(len(ln) for ln in epochs)
        assert all("val_accuracy" in ln for ln in epochs)
    assert widths["80"] <= 80 < widths[None]  # a log or pipe keeps every figure


def test_the_run_folder_keeps_the_confusion_matrix_as_a_file_and_a_picture(tmp_path: Path) -> None:
    import numpy as np

    import nnc
    from nnc.train import RunOptions, train

    result = train(
        nnc.load(EXAMPLES / "digits_mlp.nn"), options=RunOptions(epochs=2, out=tmp_path / "run")
    )
    assert result.confusion is not None
    rows = (tmp_path / "run" / "confusion.csv").read_text().splitlines()
    assert rows[0] == "true\\predicted,0,1,2,3,4,5,6,7,8,9"
    saved = np.array([[int(v) for v in r.split(",")[1:]] for r in rows[1:]])
    np.testing.assert_array_equal(saved, result.confusion)
    assert saved.sum() == 359  # the validation set
    assert (tmp_path / "run" / "confusion.png").stat().st_size > 10_000


def test_a_loss_that_falls_by_orders_of_magnitude_is_drawn_on_a_log_axis(tmp_path: Path) -> None:
    from nnc.train.plot import log_scale_reads_better, plot_loss

    # sequence_lstm's first epochs: a linear axis drew everything after epoch 1 flat
    rows = [
        {"epoch": 1, "loss": 0.156, "val_loss": 0.0132},
        *(
            {"epoch": e, "loss": 0.008 - 1e-4 * e, "val_loss": 0.0073 - 1e-4 * e}
            for e in range(2, 30)
        ),
    ]
    assert log_scale_reads_better([r["loss"] for r in rows] + [r["val_loss"] for r in rows])
    assert not log_scale_reads_better([1.9, 1.0, 0.58, 0.43, 0.35])
    assert not log_scale_reads_better([0.5, 0.001, 0.0, 0.002])  # a zero cannot be drawn
    assert plot_loss(rows, tmp_path / "loss.png", "t", "mse") is not None


def test_the_run_folder_records_every_setting_used_and_the_environment(tmp_path: Path) -> None:
    import json
    from importlib import metadata

    import nnc

    result = run_nnc(
        "train", str(EXAMPLES / "gan.nn"), "--epochs", "1", "-q", "--out", str(tmp_path / "g")
    )
    assert result.returncode == 0, result.stderr
    recipe = (tmp_path / "g" / "recipe.nn").read_text()
    # defaults the spec leaves out, which the run used
    for line in (
        "noise         normal, 16",
        "d_steps       1",
        "epochs        1",
        "loss          non_saturating",
    ):
        assert f"    {line}\n" in recipe
    assert "adam(lr = 0.001, beta1 = 0.5, beta2 = 0.999, eps = 1e-08)" in recipe
    # the written recipe is the run's recipe
    trained = nnc.parse(recipe, "recipe.nn")
    assert trained.recipes["DigitsGAN"].epochs == 1
    assert (
        trained.recipes["DigitsGAN"].noise
        == nnc.load(EXAMPLES / "gan.nn").recipes["DigitsGAN"].noise
    )
    environment = json.loads((tmp_path / "g" / "environment.json").read_text())
    assert environment["backend"] == "numpy"
    assert environment["packages"]["numpy"] == metadata.version("numpy")


def test_nnc_ir_writes_out_the_defaults_a_recipe_uses() -> None:
    result = run_nnc("ir", str(EXAMPLES / "xor.nn"))
    assert result.returncode == 0
    assert "    batch       all\n" in result.stdout and "    seed        7\n" in result.stdout
    assert "sgd(lr = 0.5, momentum = 0.0, nesterov = false)" in result.stdout
    early = run_nnc("ir", str(EXAMPLES / "digits_cnn.nn")).stdout
    assert (
        "early_stopping monitor = val_loss, patience = 5, min_delta = 0.0, restore_best = true"
        in early
    )


def test_eval_and_predict_run_on_the_onnx_backend(tmp_path: Path) -> None:
    import json

    import numpy as np

    from nnc.cli.main import main

    # "the onnx backend takes the options opset and threads. Received: seed"
    run = tmp_path / "run"
    assert main(["train", str(EXAMPLES / "digits_mlp.nn"), "--epochs", "1", "--out", str(run),
                 "--quiet"]) == 0  # fmt: skip
    figures = {}
    for backend in ("numpy", "onnx"):
        result = run_nnc("eval", str(EXAMPLES / "digits_mlp.nn"), "-w", str(run), "-b", backend,
                         "--json")  # fmt: skip
        assert result.returncode == 0, result.stderr
        figures[backend] = json.loads(result.stdout)
    assert figures["onnx"]["accuracy"] == figures["numpy"]["accuracy"]
    assert abs(figures["onnx"]["loss"] - figures["numpy"]["loss"]) < 1e-5

    samples = tmp_path / "samples.npz"
    np.savez(samples, x=np.random.default_rng(0).integers(0, 17, (5, 64)).astype(np.float32))
    outputs = {}
    for backend in ("numpy", "onnx"):
        written = tmp_path / f"{backend}.npz"
        result = run_nnc("predict", str(EXAMPLES / "digits_mlp.nn"), "-w", str(run), "-b",
                         backend, "-i", str(samples), "-o", str(written))  # fmt: skip
        assert result.returncode == 0, result.stderr
        outputs[backend] = np.load(written)["outputs"]
    assert np.abs(outputs["onnx"] - outputs["numpy"]).max() < 1e-5


def test_every_command_reads_backend_names_and_aliases_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nnc.backends.registry import parse_backend
    from nnc.cli.main import main

    def nnc(*args: str) -> tuple[int, str]:
        """The exit status and standard error of one command, run in this process
        (each in a subprocess would import the frameworks 14 times)."""
        try:
            status = main(list(args))
        except SystemExit as exit:  # argparse refuses a bad flag
            status = exit.code
        return int(status or 0), capsys.readouterr().err

    # compile took pytorch and tf; train refused them
    xor = str(EXAMPLES / "xor.nn")
    for alias, name in (("pytorch", "torch"), ("tf", "tensorflow"), ("NumPy", "numpy")):
        assert parse_backend(alias).name == name
        run = tmp_path / alias
        status, err = nnc("train", xor, "-b", alias, "--epochs", "2", "--out", str(run), "--quiet")
        assert status == 0, err
        assert f'"backend": "{name}"' in (run / "environment.json").read_text()
        for command in (["compile", xor], ["eval", xor, "-w", str(run)]):
            status, err = nnc(*command, "-b", alias)
            assert status == 0, (command, err)
    for command in (["compile", xor, "-b"], ["train", xor, "-b"], ["eval", xor, "-w", "r", "-b"],
                    ["verify", xor, "--backends"]):  # fmt: skip
        status, err = nnc(*command, "tensorflw")
        assert status == 2, (command, err)  # a bad flag
        assert "unknown backend 'tensorflw'" in err
        assert "did you mean 'tensorflow'?" in err
    status, err = nnc("train", xor, "-b", "onnx")
    assert status == 2
    assert "the onnx backend cannot train" in err


def test_a_per_sample_scalar_input_runs_on_every_backend() -> None:
    import nnc
    from nnc.verify import verify

    # torch's flatten(1) raised "IndexError: Dimension out of range" (an internal error)
    program = nnc.parse("model S {\n    input x: []\n    flatten()\n    dense(2)\n}\n")
    report = verify(program, "S", steps=3)
    assert {row.backend for row in report.rows} >= {"numpy", "torch", "tensorflow", "onnx"}
    assert report.equivalent, report
