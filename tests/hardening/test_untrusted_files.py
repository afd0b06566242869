"""Untrusted weights, checkpoints and models: every damaged or tampered file gives
exit 1 and a message naming the file and the tensor, never a traceback; nothing is
unpickled, and a file that declares more data than it holds is refused before
anything is allocated. Weights and checkpoints are tampered with in both formats nnc
reads: safetensors (what it writes) and the .npz of earlier versions."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from nnc.cli.main import main
from nnc.ir.weights import load_npz, save_npz
from tests.conftest import EXAMPLES, require
from tests.tensorfiles import read_flat, write_flat

SPEC = """model M {
    input x: [4]
    dense(3)
}

train M {
    data        iris
    standardize true
    loss        cross_entropy
    optimizer   adam(lr = 0.01)
    epochs      2
    batch       30
    seed        1
}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A spec and its finished run folder (numpy backend)."""
    folder = tmp_path_factory.mktemp("run")
    spec = folder / "m.nn"
    spec.write_text(SPEC)
    assert main(["train", str(spec), "--out", str(folder / "run"), "--quiet"]) == 0
    return spec, folder / "run"


def run_nnc(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "internal error" not in captured.err
    return code, captured.err


def edit(changes: dict[str, object]) -> Callable[[Path], None]:
    """Rewrite tensors or metadata (``meta/<key>``) of a weights file or checkpoint, in
    its own format (None deletes one)."""

    def apply(path: Path) -> None:
        arrays = read_flat(path)
        for key, value in changes.items():
            if value is None:
                arrays.pop(key)
            else:
                arrays[key] = np.asarray(value)
        write_flat(path, arrays)

    return apply


def as_npz(tamper: Callable[[Path], None]) -> Callable[[Path], None]:
    """Put an .npz (the format of nnc before safetensors) in place of the safetensors
    file, holding the same tensors and metadata, then tamper with it."""

    def apply(path: Path) -> None:
        arrays = read_flat(path)
        if not any(k.startswith("weights/") for k in arrays):  # a plain weights file
            arrays = {k: v for k, v in arrays.items() if not k.startswith("meta/")}
        path.unlink()
        old = path.with_suffix(".npz")
        write_flat(old, arrays)
        tamper(old)

    return apply


def header(change: Callable[[dict[str, object]], None]) -> Callable[[Path], None]:
    """Edit the JSON header of a safetensors file, keeping its bytes."""

    def apply(path: Path) -> None:
        data = path.read_bytes()
        size = int.from_bytes(data[:8], "little")
        parsed = json.loads(data[8 : 8 + size])
        change(parsed)
        text = json.dumps(parsed).encode()
        path.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + size :])

    return apply


def entry(name: str, **fields: object) -> Callable[[Path], None]:
    return header(lambda h: h[name].update(fields))  # type: ignore[attr-defined]


def length(size: int) -> Callable[[Path], None]:
    """Replace the header's length."""
    return lambda p: p.write_bytes(size.to_bytes(8, "little") + p.read_bytes()[8:])


def raw_entry(name: str, header: dict[str, object], payload: bytes) -> Callable[[Path], None]:
    """Replace an archive by one entry with a hand-written .npy header."""

    def apply(path: Path) -> None:
        buffer = io.BytesIO()
        np.lib.format.write_array_header_1_0(buffer, header)
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(f"{name}.npy", buffer.getvalue() + payload)

    return apply


def pickled(name: str) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, np.array([{"evil": 1}], dtype=object))
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(f"{name}.npy", buffer.getvalue())

    return apply


HUGE = {"descr": "<f4", "fortran_order": False, "shape": (10**12,)}

# -- nnc train --resume on a tampered checkpoint ---------------------------------------

CHECKPOINTS: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:300]), "the file is truncated"),
    "random_bytes": (
        lambda p: p.write_bytes(b"\x00junk" * 99),
        "is not a readable safetensors file: its header declares",
    ),
    "header_too_large": (length(2**40), "more than the 16,777,216 nnc reads"),
    "header_dtype": (
        entry("weights/dense_1.bias", dtype="BF16"),
        "tensor 'weights/dense_1.bias' has dtype 'BF16', which nnc does not read",
    ),
    "header_shape": (
        entry("weights/dense_1.weight", shape=[10**12]),
        "tensor 'weights/dense_1.weight' declares shape [1000000000000] "
        "(4,000,000,000,000 bytes) but stores 48 bytes; the file is damaged",
    ),
    "npz_truncated": (
        as_npz(lambda p: p.write_bytes(p.read_bytes()[:300])),
        "is not a readable .npz archive (not a zip file)",
    ),
    "npz_random_bytes": (as_npz(lambda p: p.write_bytes(b"\x00junk" * 99)), "not a zip file"),
    "npz_pickle": (as_npz(pickled("weights/dense_1.weight")), "holds Python objects"),
    "npz_forged_header": (
        as_npz(raw_entry("weights/dense_1.weight", HUGE, b"\0" * 16)),
        "array 'weights/dense_1.weight' declares shape [1000000000000] "
        "(4,000,000,000,000 bytes) but stores 16 bytes; the file is damaged",
    ),
    "npz_weight_shape": (
        as_npz(edit({"weights/dense_1.weight": np.zeros((2, 2), np.float32)})),
        "tensor 'dense_1.weight' has shape [2, 2]; the model expects [3, 4]",
    ),
    "npz_weight_text": (
        as_npz(edit({"weights/dense_1.bias": np.array(["a", "b", "c"])})),
        "weight 'dense_1.bias' has dtype <U1",
    ),
    "npz_epoch_as_text": (
        as_npz(edit({"meta/epoch": np.str_("3")})),
        "meta/epoch must be a non-negative integer. Received: '3'",
    ),
    "weight_shape": (
        edit({"weights/dense_1.weight": np.zeros((2, 2), np.float32)}),
        "tensor 'dense_1.weight' has shape [2, 2]; the model expects [3, 4]",
    ),
    "weight_missing": (edit({"weights/dense_1.bias": None}), "is missing tensor(s) dense_1.bias"),
    "weight_extra": (
        edit({"weights/evil.weight": np.zeros(3, np.float32)}),
        "has tensor(s) the model does not: evil.weight",
    ),
    "weight_integers": (
        edit({"weights/dense_1.bias": np.array([1, 2, 3], np.int32)}),
        "weight 'dense_1.bias' has dtype int32",
    ),
    "weight_nan": (
        edit({"weights/dense_1.bias": np.array([0, np.nan, 0], np.float32)}),
        "weight 'dense_1.bias' holds NaN or infinite values",
    ),
    "optimizer_shape": (
        edit({"optimizer/dense_1.weight.m": np.zeros((7, 7), np.float32)}),
        "optimizer state 'dense_1.weight.m' has shape [7, 7]; the model expects [3, 4]",
    ),
    "optimizer_extra": (
        edit({"optimizer/evil.m": np.zeros(3, np.float32)}),
        "the optimizer state should hold dense_1.bias.m, dense_1.bias.v, dense_1.weight.m, "
        "dense_1.weight.v, step; unknown evil.m",
    ),
    "optimizer_nan": (
        edit({"optimizer/dense_1.weight.v": np.full((3, 4), np.inf, np.float32)}),
        "optimizer state 'dense_1.weight.v' is not a finite number array",
    ),
    "best_weights": (
        edit({"best/dense_1.weight": np.zeros(1, np.float32)}),
        "(best epoch's weights) is missing tensor(s) dense_1.bias",
    ),
    "standardisation": (
        edit({"standardize/mean": np.zeros((1, 9), np.float32)}),
        "the standardisation statistics are damaged",
    ),
    "batch_order": (
        edit({"meta/rng": np.str_('{"bit_generator": "PCG64", "state": {"state": "x"}}')}),
        "meta/rng is not a state of the batch-order generator",
    ),
    "negative_epoch": (
        edit({"meta/epoch": np.int64(-5)}),
        "meta/epoch must be a non-negative integer. Received: -5",
    ),
    "epoch_as_text": (
        edit({"meta/epoch": np.str_("three")}),
        "meta/epoch must be a non-negative integer. Received: 'three'",
    ),
    "epoch_as_a_fraction": (
        edit({"meta/epoch": np.str_("1.5")}),
        "meta/epoch must be a non-negative integer. Received: 1.5",
    ),
    "history": (
        edit({"meta/history": np.str_('{"epoch": 1}')}),
        "the history is not a list of epochs and their figures",
    ),
    "newer_format": (edit({"meta/format": np.int64(99)}), "format 99 is newer than this nnc reads"),
    "not_a_checkpoint": (edit({"meta/step": None}), "is not an nnc checkpoint (no meta/step)"),
    "batches_beyond_the_epoch": (
        edit({"meta/batch": np.int64(10**9)}),
        # Found while choosing a checkpoint (issue 26): more batches than steps.
        "meta/batch 1000000000 do not fit meta/step",
    ),
}


@pytest.mark.parametrize("case", list(CHECKPOINTS))
def test_resume_from_a_tampered_checkpoint(
    case: str, trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, run = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    *older, newest = sorted((copy / "checkpoints").iterdir())
    for path in older:
        path.unlink()
    tamper, message = CHECKPOINTS[case]
    tamper(newest)
    damaged = newest if newest.exists() else newest.with_suffix(".npz")
    code, err = run_nnc(capsys, "train", str(spec), "--resume", str(copy), "--epochs", "3")
    assert code == 1, err
    assert message in err
    assert str(damaged) in err or case == "batches_beyond_the_epoch"


# -- nnc eval --weights on bad files ---------------------------------------------------

WEIGHT_FILES: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:100]), "the file is truncated"),
    "random_bytes": (
        lambda p: p.write_bytes(np.random.default_rng(0).bytes(999)),
        "is not a readable safetensors file",
    ),
    "empty": (lambda p: p.write_bytes(b""), "holds 0 bytes, less than the 8-byte length"),
    "header_too_large": (length(10**9), "more than the 16,777,216 nnc reads"),
    "header_not_json": (
        lambda p: p.write_bytes(b"\x03\0\0\0\0\0\0\0{{{"),
        "its header is not JSON",
    ),
    "header_dtype": (
        entry("dense_1.bias", dtype="F8_E5M2"),
        "tensor 'dense_1.bias' has dtype 'F8_E5M2', which nnc does not read",
    ),
    "header_shape": (
        entry("dense_1.weight", shape=[4, 4]),
        "tensor 'dense_1.weight' declares shape [4, 4] (64 bytes) but stores 48 bytes",
    ),
    "npz_truncated": (
        as_npz(lambda p: p.write_bytes(p.read_bytes()[:100])),
        "not a zip file",
    ),
    "npz_random_bytes": (
        as_npz(lambda p: p.write_bytes(np.random.default_rng(0).bytes(999))),
        "is not a readable .npz archive",
    ),
    "npz_empty": (as_npz(lambda p: p.write_bytes(b"")), "not a zip file"),
    "npz_pickle": (as_npz(pickled("dense_1.weight")), "holds Python objects"),
    "npz_forged_header": (
        as_npz(raw_entry("dense_1.weight", HUGE, b"\0" * 16)),
        "array 'dense_1.weight' declares shape [1000000000000]",
    ),
    "npz_damaged_header": (
        as_npz(
            lambda p: zipfile.ZipFile(p, "w").writestr("dense_1.weight.npy", b"\x93NUMPY\x01\x00??")
        ),
        "array 'dense_1.weight' has a damaged header",
    ),
    "npz_wrong_shape": (
        as_npz(edit({"dense_1.weight": np.zeros((4, 3), np.float32)})),
        "tensor 'dense_1.weight' has shape [4, 3]; the model expects [3, 4]",
    ),
    "wrong_shape": (
        edit({"dense_1.weight": np.zeros((4, 3), np.float32)}),
        "tensor 'dense_1.weight' has shape [4, 3]; the model expects [3, 4]",
    ),
    "missing_tensor": (edit({"dense_1.bias": None}), "is missing tensor(s) dense_1.bias"),
    "extra_tensor": (
        edit({"dense_9.weight": np.zeros(2, np.float32)}),
        "has tensor(s) the model does not: dense_9.weight",
    ),
    "integer_dtype": (
        edit({"dense_1.bias": np.zeros(3, np.int32)}),
        "tensor 'dense_1.bias' has dtype int32; expected a float type",
    ),
    "nan": (
        edit({"dense_1.weight": np.full((3, 4), np.nan, np.float32)}),
        "tensor 'dense_1.weight' holds NaN or infinite values",
    ),
}


@pytest.mark.parametrize("case", list(WEIGHT_FILES))
def test_eval_with_a_bad_weights_file(
    case: str, trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, run = trained
    weights = tmp_path / "weights.safetensors"
    shutil.copy(run / "weights.safetensors", weights)
    shutil.copy(run / "standardize.npz", tmp_path / "standardize.npz")
    tamper, message = WEIGHT_FILES[case]
    tamper(weights)
    weights = weights if weights.exists() else weights.with_suffix(".npz")
    code, err = run_nnc(capsys, "eval", str(spec), "--weights", str(weights))
    assert code == 1, err
    assert f"error: {weights}" in err and message in err


def test_eval_names_missing_weights(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, _ = trained
    code, err = run_nnc(capsys, "eval", str(spec), "--weights", str(tmp_path / "none.npz"))
    assert code == 1 and f"no such weights file or run folder: {tmp_path / 'none.npz'}" in err
    code, err = run_nnc(capsys, "eval", str(spec), "--weights", str(tmp_path))
    assert (
        code == 1
        and f"{tmp_path} holds neither weights.safetensors nor a readable checkpoint" in err
    )


def test_a_zip_bomb_is_refused_before_it_expands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """64 MiB of zeros compress to 64 KiB; with a 16 MiB memory budget the archive is
    refused from its directory, before any array is allocated."""
    from nnc.errors import ResourceError

    path = tmp_path / "bomb.npz"
    header = io.BytesIO()
    shape = (16 * 2**20,)
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": shape}
    )
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("w.npy", "w") as member,
    ):
        member.write(header.getvalue())
        for _ in range(64):
            member.write(bytes(2**20))
    assert path.stat().st_size < 2**20
    monkeypatch.setenv("NNC_MEMORY_BUDGET", "16MiB")
    with pytest.raises(ResourceError) as info:
        load_npz(path)
    assert info.value.message == (
        f"{path} holds 67,108,864 bytes of arrays, more than the memory budget of 16,777,216 "
        "bytes (NNC_MEMORY_BUDGET)"
    )


# -- malformed ONNX for nnc import and nnc run -----------------------------------------


def _onnx_cases() -> dict[str, tuple[bytes, str, str]]:
    """name -> (model bytes, message of nnc import, message of nnc run)."""
    from onnx import TensorProto, helper

    from tests.backends.onnx.test_errors import model_bytes, one_node, vector

    cycle = [
        helper.make_node("Relu", ["b"], ["a"], name="first"),
        helper.make_node("Relu", ["a"], ["b"], name="second"),
        helper.make_node("Add", ["x", "b"], ["y"], name="out"),
    ]
    twice = [
        helper.make_node("Relu", ["x"], ["y"], name="a"),
        helper.make_node("Tanh", ["x"], ["y"], name="b"),
    ]
    external = helper.make_tensor("w", TensorProto.FLOAT, [2, 4], vals=[0.0] * 8)
    external.data_location = TensorProto.EXTERNAL
    del external.float_data[:]
    entry = external.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    huge = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1_000_000, 1_000_000])
    missing = "node 'n1' (Gemm) reads 'w', which no node, graph input or initializer defines"
    both = {
        "bad_protobuf": (b"\x08\x07\xff\xff\xff garbage", "its protobuf cannot be parsed"),
        "no_graph": (b"", "is not an ONNX model: it has no graph with outputs"),
        "missing_initializer": (one_node("Gemm", inputs=("x", "w"), transB=1), missing),
        "cycle": (
            model_bytes(cycle, [vector("x", "N", 2)], [vector("y")]),
            "the graph has a cycle through node 'first' (Relu), node 'second' (Relu)",
        ),
        "defined_twice": (
            model_bytes(twice, [vector("x", "N", 2)], [vector("y")]),
            "tensor 'y' is defined twice: by node 'a' (Relu) and node 'b' (Tanh)",
        ),
        "absurd_input_dims": (
            one_node("Relu", dims=("N", 100_000, 100_000)),
            "graph input 'x' has more than 268,435,456 values per sample",
        ),
        "negative_dim": (
            one_node("Relu", dims=("N", -3)),
            "graph input 'x' has an impossible dim. Received: [N, -3]",
        ),
        "absurd_initializer": (
            one_node("Gemm", inputs=("x", "w"), initializers=[huge]),
            "initializer 'w' has absurd dims [1000000, 1000000]",
        ),
        "external_data": (
            one_node("Gemm", inputs=("x", "w"), initializers=[external]),
            "initializer 'w' keeps its data in an external file",
        ),
    }
    cases = {name: (data, message, message) for name, (data, message) in both.items()}
    cases["unknown_op"] = (
        one_node("Frobnicate"),
        "No Op registered for Frobnicate",
        "No Op registered for Frobnicate",
    )
    cases["op_nnc_cannot_import"] = (
        one_node("Sin"),
        "node 'n1' (Sin): ONNX op Sin is not supported",
        "",  # onnxruntime runs it
    )
    return cases


ONNX_CASES = [
    "bad_protobuf",
    "no_graph",
    "missing_initializer",
    "cycle",
    "defined_twice",
    "absurd_input_dims",
    "negative_dim",
    "absurd_initializer",
    "external_data",
    "unknown_op",
    "op_nnc_cannot_import",
]


@pytest.mark.parametrize("case", ONNX_CASES)
def test_malformed_onnx_for_import_and_run(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require("onnx")
    require("onnxruntime")
    data, import_message, run_message = _onnx_cases()[case]
    model = tmp_path / "m.onnx"
    model.write_bytes(data)
    code, err = run_nnc(capsys, "import", str(model), "-o", str(tmp_path / "m.nn"))
    assert code == 1 and import_message in err, err
    assert not (tmp_path / "m.nn").exists()
    inputs = tmp_path / "in.npz"
    save_npz(inputs, {"x": np.ones((1, 4), np.float32)})
    code, err = run_nnc(capsys, "run", str(model), "--input", str(inputs))
    if run_message:
        assert code == 1 and run_message in err, err
    else:
        assert code == 0, err


def test_onnx_files_that_are_not_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require("onnx")
    require("onnxruntime")
    for command in (["import", "-o", str(tmp_path / "m.nn")], ["run", "--input", "x.npz"]):
        code, err = run_nnc(capsys, command[0], str(tmp_path / "none.onnx"), *command[1:])
        assert code == 1 and f"no such file: {tmp_path / 'none.onnx'}" in err
        code, err = run_nnc(capsys, command[0], str(tmp_path), *command[1:])
        assert code == 1 and f"cannot read {tmp_path}" in err


def test_unwritable_outputs_are_user_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    for args in (
        ["compile", str(EXAMPLES / "xor.nn"), "-o", str(blocker / "out.py")],
        ["train", str(EXAMPLES / "xor.nn"), "--epochs", "1", "--out", str(blocker / "run")],
    ):
        code, err = run_nnc(capsys, *args)
        assert code == 1 and f"error: {blocker}" in err and "Not a directory" in err, err
