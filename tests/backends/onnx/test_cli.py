"""The ONNX commands: nnc export, nnc compile --backend onnx, nnc run, nnc import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc.cli.main import main
from nnc.ir.weights import init_weights, load_npz, save_npz
from tests.conftest import EXAMPLES, ROOT, require


@pytest.fixture(autouse=True)
def _frameworks() -> None:
    require("onnx")
    require("onnxruntime")


def nnc_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_export_equals_compile_byte_for_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = str(EXAMPLES / "resnet_block.nn")
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    code, _, err = nnc_cli(capsys, "export", spec, "--no-preprocess", "-o", str(a))
    assert code == 0
    assert f"wrote {a} (opset 17, initial weights from the seed, " in err
    assert "the caller owes the preprocessing: digits, scale = unit" in err
    assert nnc_cli(capsys, "compile", spec, "--backend", "onnx", "-o", str(b))[0] == 0
    assert a.read_bytes() == b.read_bytes()
    # by default the graph takes raw pixels, as nnc predict does
    code, _, err = nnc_cli(capsys, "export", spec, "-o", str(a))
    assert code == 0 and a.read_bytes() != b.read_bytes()
    assert "the graph takes raw samples and applies the run's preprocessing: digits" in err


def test_export_with_checkpoint_and_opset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import onnx
    from onnx import numpy_helper

    spec = tmp_path / "g.nn"
    spec.write_text("model G {\n    input x: [3]\n    dense(4) gelu\n}\n")
    weights = init_weights(nnc.load(spec), "G", seed=5)
    checkpoint = tmp_path / "run.npz"
    save_npz(
        checkpoint,
        {**{f"weights/{k}": v for k, v in weights.items()}, "optimizer/step": np.array(3)},
    )
    out = tmp_path / "g.onnx"
    code, _, err = nnc_cli(
        capsys, "export", str(spec), "--weights", str(checkpoint), "--opset", "20", "-o", str(out)
    )
    assert code == 0, err
    model = onnx.load(out)
    assert model.opset_import[0].version == 20
    assert [n.op_type for n in model.graph.node] == ["Gemm", "Gelu"]
    stored = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    assert np.array_equal(stored["dense_1.weight"], weights["dense_1.weight"])
    code, _, err = nnc_cli(capsys, "export", str(spec), "--opset", "13", "-o", str(out))
    assert code == 0, err  # refused before ("17 to 28"); gelu is written out before 20
    assert onnx.load(out).opset_import[0].version == 13
    assert "Erf" in [n.op_type for n in onnx.load(out).graph.node]
    code, _, err = nnc_cli(capsys, "export", str(spec), "--opset", "10", "-o", str(out))
    assert code == 1
    assert "the onnx backend exports opsets 11 to" in err and "Received: 10" in err


def test_run_prints_and_saves(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "xor.onnx"
    assert nnc_cli(capsys, "export", str(EXAMPLES / "xor.nn"), "-o", str(model))[0] == 0
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    data = tmp_path / "in.npz"
    save_npz(data, {"points": x})  # one input: the only array is used, whatever its name
    code, out, _ = nnc_cli(capsys, "run", str(model), "--input", str(data))
    assert code == 0
    assert out.startswith("sigmoid_2: float32[4, 1]\n[[0.5")
    saved = tmp_path / "out.npz"
    assert nnc_cli(capsys, "run", str(model), "--input", str(data), "-o", str(saved))[0] == 0
    from nnc.backends import onnx as backend

    want = backend.build(nnc.load(EXAMPLES / "xor.nn"), threads=1).forward(x)
    np.testing.assert_array_equal(load_npz(saved)["sigmoid_2"], want)


def test_run_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "two.nn"
    spec.write_text("model Two {\n    input a: [2]\n    input b: [2]\n    output a + b\n}\n")
    model = tmp_path / "two.onnx"
    assert nnc_cli(capsys, "export", str(spec), "-o", str(model))[0] == 0
    data = tmp_path / "in.npz"
    save_npz(data, {"a": np.ones((1, 2), np.float32), "c": np.ones((1, 2), np.float32)})
    code, _, err = nnc_cli(capsys, "run", str(model), "--input", str(data))
    assert code == 1
    assert f"error: {data} has no array for graph input(s) b. Received arrays: a, c" in err
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    code, _, err = nnc_cli(capsys, "run", str(bad), "--input", str(data))
    assert code == 1
    assert f"error: {bad} is not an ONNX model: its protobuf cannot be parsed" in err
    code, _, err = nnc_cli(capsys, "run", str(model), "--input", str(tmp_path / "none.npz"))
    assert code == 1 and "no such input file" in err


def test_import_writes_a_checked_spec_and_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exported = tmp_path / "cnn.onnx"
    assert nnc_cli(capsys, "export", str(EXAMPLES / "digits_cnn.nn"), "-o", str(exported))[0] == 0
    spec = tmp_path / "cnn.nn"
    code, _, err = nnc_cli(capsys, "import", str(exported), "-o", str(spec), "--name", "Cnn")
    assert code == 0, err
    assert (
        f"wrote {spec} (model Cnn, 9 layers, 13,706 parameters) and {tmp_path / 'cnn.safetensors'}"
        in err
    )
    assert "checked: the same outputs as the original in onnxruntime on a random batch of 4" in err
    assert spec.read_text().startswith("# Imported by nnc from cnn.onnx.\nmodel Cnn {\n")
    assert nnc_cli(capsys, "check", str(spec))[0] == 0
    assert nnc.count_params(nnc.load(spec), "Cnn") == nnc.count_params(
        nnc.load(EXAMPLES / "digits_cnn.nn"), "DigitsCNN"
    )
    # The written weights load for the written spec and export again.
    again = tmp_path / "again.onnx"
    code, _, err = nnc_cli(
        capsys,
        "export",
        str(spec),
        "--weights",
        str(tmp_path / "cnn.safetensors"),
        "-o",
        str(again),
    )
    assert code == 0, err


def test_import_reports_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\x01\x02")
    code, _, err = nnc_cli(capsys, "import", str(bad), "-o", str(tmp_path / "m.nn"))
    assert code == 1
    assert f"error: {bad} is not an ONNX model" in err
    assert not (tmp_path / "m.nn").exists()


@pytest.mark.parametrize("command", ["export", "import", "run"])
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert f"usage: nnc {command}" in capsys.readouterr().out


def test_frameworks_are_imported_lazily() -> None:
    """Importing the backend imports no framework; emit needs onnx only."""
    code = (
        "import sys\n"
        "import nnc\n"
        "from nnc.backends import onnx as backend\n"
        "heavy = ('onnx', 'onnxruntime', 'torch', 'tensorflow')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "backend.emit(nnc.load('examples/sequence_lstm.nn'))\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["[]", "['onnx']"]


def test_export_and_import_carry_the_input_standardisation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = EXAMPLES / "house_prices.nn"
    weights = init_weights(nnc.load(spec), "HousePrices", seed=1)
    mean = np.arange(6, dtype=np.float32).reshape(1, 6)
    std = np.full((1, 6), 2.0, np.float32)
    checkpoint = save_npz(
        tmp_path / "epoch-3.npz",
        {
            **{f"weights/{k}": v for k, v in weights.items()},
            "standardize/mean": mean,
            "standardize/std": std,
        },
    )
    model = tmp_path / "hp.onnx"
    code, _, err = nnc_cli(capsys, "export", str(spec), "-w", str(checkpoint), "-o", str(model))
    assert code == 0, err
    assert f"weights from {checkpoint}, " in err
    assert "applies the run's preprocessing: standardised with the run's statistics" in err
    out_dir = tmp_path / "imported"
    code, _, err = nnc_cli(capsys, "import", str(model), "-o", str(out_dir / "hp.nn"))
    assert code == 0, err
    assert "note: the graph standardises its input 'features' first" in err
    statistics = load_npz(out_dir / "standardize.npz")
    np.testing.assert_array_equal(statistics["mean"], mean)
    np.testing.assert_array_equal(statistics["std"], std)
