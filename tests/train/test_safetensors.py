"""Weights and checkpoints in safetensors: the `.npz` files of the version before still
read (a fixture written by it, tests/train/fixtures/npz_format), the files nnc writes
read by the safetensors library itself (torch and numpy) under canonical names, the
metadata round trip, and damaged files as typed errors that resume falls back past."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file as numpy_load_file

import nnc
from nnc.cli.main import main
from nnc.errors import ResourceError, WeightsError
from nnc.ir.passes.params import model_params
from nnc.ir.weights import (
    MAX_HEADER,
    load_weights,
    read_tensor_file,
    read_weights_file,
    save_safetensors,
)
from nnc.train.checkpoint import (
    Checkpoint,
    TrainState,
    latest_checkpoint,
    read_checkpoint,
    write_checkpoint,
)
from tests.conftest import EXAMPLES, require

FIXTURE = Path(__file__).parent / "fixtures" / "npz_format"
XOR = EXAMPLES / "xor.nn"
INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)


def raw(header: dict[str, object], body: bytes, size: int | None = None) -> bytes:
    """A safetensors file written by hand: the header's length, its JSON, the bytes."""
    text = json.dumps(header).encode()
    return (len(text) if size is None else size).to_bytes(8, "little") + text + body


@pytest.fixture(scope="module")
def resumed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The old-format run resumed to 6 epochs by today's nnc, and the same run with its
    checkpoints first rewritten as safetensors by today's nnc, resumed alike.

    The reference is the same state in the new format, not a fresh 6-epoch run: the
    fixture's first 4 epochs were computed on another processor, whose float32 kernels
    may round differently from this one's (the outputs of its weights still match
    bitwise, test_old_npz_weights_and_checkpoints_still_load)."""
    root = tmp_path_factory.mktemp("safetensors")
    run = root / "old"
    shutil.copytree(FIXTURE / "xor_run", run)
    straight = root / "converted"
    shutil.copytree(FIXTURE / "xor_run", straight)
    (straight / "weights.npz").unlink()
    for old in sorted((straight / "checkpoints").glob("*.npz")):
        write_checkpoint(old.parent, read_checkpoint(old))
        old.unlink()
    args = ["--epochs", "6", "--track", "none", "-q"]
    for folder in (run, straight):
        assert main(["train", str(XOR), "--resume", str(folder), *args]) == 0
    return run, straight


# -- (1) the .npz files of the previous version -----------------------------------------


@pytest.mark.parametrize("name", ["weights.npz", "checkpoints/epoch-000004.npz"])
def test_old_npz_weights_and_checkpoints_still_load(name: str) -> None:
    expected = json.loads((FIXTURE / "expected.json").read_text())
    program = nnc.load(XOR)
    weights = load_weights(FIXTURE / "xor_run" / name, program, "Xor")
    # The same bytes as a plain np.load of the final weights (an independent reader).
    with np.load(FIXTURE / "xor_run" / "weights.npz", allow_pickle=False) as archive:
        for key in archive.files:
            assert weights[key].tobytes() == archive[key].tobytes(), key
            assert weights[key].tobytes().hex() == expected["weights_hex"][key]
    outputs = nnc.runtime(program, "numpy", "Xor", weights=weights).forward(INPUTS)
    kind = "weights" if name == "weights.npz" else "checkpoint"
    assert [float(v).hex() for v in outputs.ravel()] == expected[kind]  # bitwise
    checkpoint = read_checkpoint(FIXTURE / "xor_run" / "checkpoints" / "epoch-000004.npz")
    assert (checkpoint.state.epoch, checkpoint.state.step) == (expected["epoch"], expected["step"])
    assert checkpoint.recipe_hash == expected["recipe_hash"]
    assert checkpoint.state.rng_state == expected["rng"]


def test_eval_and_predict_take_an_old_npz_as_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "old"
    shutil.copytree(FIXTURE / "xor_run", run)
    for weights in (run / "weights.npz", run / "checkpoints" / "epoch-000004.npz", run):
        out = tmp_path / "p.csv"
        assert main(["eval", str(XOR), "--weights", str(weights)]) == 0
        (tmp_path / "x.csv").write_text("a,b\n0,0\n0,1\n1,0\n1,1\n")
        args = ["--input", str(tmp_path / "x.csv"), "-o", str(out)]
        assert main(["predict", str(XOR), "--weights", str(weights), *args]) == 0
        rows = out.read_text().splitlines()[1:]
        expected = json.loads((FIXTURE / "expected.json").read_text())["weights"]
        got = [float(r.split(",")[0]) for r in rows]
        assert max(abs(a - float.fromhex(b)) for a, b in zip(got, expected, strict=True)) < 1e-6
    assert "error" not in capsys.readouterr().err


def test_resuming_an_old_npz_run_is_bitwise_the_same_state_in_safetensors(
    resumed: tuple[Path, Path],
) -> None:
    run, straight = resumed
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    # keep 3: the old epoch 4 and the two new ones; the old final weights.npz is retired.
    assert names == ["epoch-000004.npz", "epoch-000005.safetensors", "epoch-000006.safetensors"]
    assert not (run / "weights.npz").exists()
    again, direct = (
        read_weights_file(run / "weights.safetensors"),
        read_weights_file(straight / "weights.safetensors"),
    )
    assert again.keys() == direct.keys()
    for key in direct:
        assert again[key].tobytes() == direct[key].tobytes(), key
    for a, b in zip(
        json.loads((run / "history.json").read_text()),
        json.loads((straight / "history.json").read_text()),
        strict=True,
    ):
        assert a["loss"] == b["loss"] and a["epoch"] == b["epoch"]


# -- (2) what nnc writes, read by the safetensors library ------------------------------


def test_weights_file_loads_with_safetensors_under_canonical_names(
    resumed: tuple[Path, Path],
) -> None:
    require("torch")
    from safetensors.torch import load_file as torch_load_file
    from safetensors.torch import save_file as torch_save_file

    _, straight = resumed
    path = straight / "weights.safetensors"
    shapes = {p.name: p.spec.shape for p in model_params(nnc.load(XOR), "Xor")}
    by_torch = torch_load_file(path)
    by_numpy = numpy_load_file(path)
    assert {k: tuple(v.shape) for k, v in by_torch.items()} == shapes
    assert (
        {k: v.shape for k, v in by_numpy.items()}
        == shapes
        == {
            "dense_1.weight": (5, 2),
            "dense_1.bias": (5,),
            "dense_2.weight": (1, 5),
            "dense_2.bias": (1,),
        }
    )
    ours = read_weights_file(path)
    for key in shapes:
        assert str(by_torch[key].dtype) == "torch.float32" and by_numpy[key].dtype == np.float32
        assert np.array_equal(by_torch[key].numpy(), ours[key])
        assert np.array_equal(by_numpy[key], ours[key])
    with safe_open(path, "np") as f:
        meta = f.metadata()
    checkpoint = read_checkpoint(straight / "checkpoints" / "epoch-000006.safetensors")
    assert meta["recipe_hash"] == checkpoint.recipe_hash and meta["epoch"] == "6"
    assert meta["model"] == "Xor" and meta["backend"] == "numpy"
    assert meta["nnc_version"] == nnc.__version__
    # A checkpoint is a safetensors file too: its weights under weights/<canonical name>.
    stored = numpy_load_file(straight / "checkpoints" / "epoch-000006.safetensors")
    assert sorted(stored) == ["optimizer/step", *sorted(f"weights/{k}" for k in shapes)]
    # And the other way: a file the library writes from torch tensors is nnc weights.
    foreign = straight.parent / "from_torch.safetensors"
    torch_save_file(by_torch, foreign)
    loaded = load_weights(foreign, nnc.load(XOR), "Xor")
    assert all(np.array_equal(loaded[k], ours[k]) for k in shapes)


# -- (3) the metadata round trip --------------------------------------------------------


def _checkpoint() -> Checkpoint:
    rng = np.random.default_rng(11)
    rng.permutation(1000)
    noise = np.random.default_rng(12)
    noise.normal(size=7)
    state = TrainState(
        epoch=3,
        batch=2,
        step=41,
        rng_state=rng.bit_generator.state,
        partial_loss=0.1 + 0.2,  # 0.30000000000000004: every bit must come back
        partial_count=17,
        best=1 / 3,
        best_epoch=2,
        wait=1,
        noise_state=noise.bit_generator.state,
        partial_figures={"d_loss": math.pi, "g_loss": 2.5e-310},
    )
    return Checkpoint(
        weights={"w": np.arange(6, dtype=np.float32).reshape(2, 3)},
        optimizer={"step": np.asarray(np.int64(41)), "w.m": np.ones((2, 3), np.float32)},
        state=state,
        recipe_hash="abc123",
        recipe=json.dumps({"recipe": {"epochs": 5, "seed": 4}}),
        backend="torch",
        workers=2,
    )


def test_checkpoint_metadata_round_trip(tmp_path: Path) -> None:
    written = _checkpoint()
    path = write_checkpoint(tmp_path, written)
    assert path.name == "epoch-000003-batch-000002.safetensors"
    back = read_checkpoint(path)
    assert back.state == written.state  # exact: floats and generator states included
    assert back.state.partial_loss == 0.30000000000000004
    assert (back.recipe_hash, back.recipe, back.backend, back.workers) == (
        "abc123",
        written.recipe,
        "torch",
        2,
    )
    assert back.optimizer["step"].dtype == np.int64 and int(back.optimizer["step"]) == 41
    assert np.array_equal(back.weights["w"], written.weights["w"])
    # The generator continues where the saved one stopped.
    restored = np.random.default_rng()
    restored.bit_generator.state = back.state.rng_state
    original = np.random.default_rng(11)
    original.permutation(1000)
    assert np.array_equal(restored.permutation(50), original.permutation(50))
    with safe_open(path, "np") as f:
        meta = f.metadata()
    assert meta["epoch"] == "3" and meta["batch"] == "2" and meta["step"] == "41"
    assert meta["best"] == repr(1 / 3) and meta["nnc_version"] == nnc.__version__
    assert json.loads(meta["rng"]) == written.state.rng_state


# -- (4) damaged safetensors files ------------------------------------------------------

F32 = np.zeros((2, 3), np.float32).tobytes()
GOOD = {"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}
DAMAGED: dict[str, tuple[bytes, str]] = {
    "truncated": (raw(GOOD, F32)[:40], "the file is truncated"),
    "shorter_than_the_length": (b"\x01\x02\x03", "less than the 8-byte length"),
    "header_too_large": (
        raw(GOOD, F32, size=MAX_HEADER + 1),
        f"its header declares {MAX_HEADER + 1:,} bytes, more than the {MAX_HEADER:,} nnc reads",
    ),
    "header_past_the_end": (raw(GOOD, F32, size=10**6), "the file is truncated"),
    "header_not_json": (b"\x04\0\0\0\0\0\0\0{{{{", "its header is not JSON"),
    "unknown_dtype": (
        raw({"w": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 12]}}, F32[:12]),
        "tensor 'w' has dtype 'BF16', which nnc does not read",
    ),
    "shape_beyond_the_bytes": (
        raw({"w": {"dtype": "F32", "shape": [10**12], "data_offsets": [0, 24]}}, F32),
        "tensor 'w' declares shape [1000000000000] (4,000,000,000,000 bytes) but stores 24 "
        "bytes; the file is damaged",
    ),
    "offsets_past_the_end": (
        raw({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 2400]}}, F32),
        "tensor 'w' has byte range [0, 2400], outside the 24 bytes the file stores",
    ),
    "metadata_not_text": (raw({"__metadata__": {"epoch": 3}, **GOOD}, F32), "__metadata__"),
}


@pytest.mark.parametrize("case", list(DAMAGED))
def test_damaged_safetensors_are_weights_errors(case: str, tmp_path: Path) -> None:
    data, message = DAMAGED[case]
    path = tmp_path / "w.safetensors"
    path.write_bytes(data)
    with pytest.raises(WeightsError) as info:
        read_tensor_file(path)
    assert str(path) in info.value.message and message in info.value.message


def test_tensors_that_do_not_fit_the_model(tmp_path: Path) -> None:
    program = nnc.load(XOR)
    good = {p.name: np.zeros(p.spec.shape, np.float32) for p in model_params(program, "Xor")}
    cases = {
        "wrong shape": (
            {**good, "dense_1.weight": np.zeros((2, 5), np.float32)},
            "tensor 'dense_1.weight' has shape [2, 5]; the model expects [5, 2]",
        ),
        "wrong dtype": (
            {**good, "dense_1.bias": np.zeros(5, np.int32)},
            "tensor 'dense_1.bias' has dtype int32; expected a float type",
        ),
        "beyond float32": (
            {**good, "dense_2.bias": np.array([1e300])},
            "tensor 'dense_2.bias' holds 1e+300, which does not fit float32",
        ),
    }
    for name, (weights, message) in cases.items():
        path = save_safetensors(tmp_path / "w.safetensors", weights)
        with pytest.raises(WeightsError, match=message.replace("[", r"\[").replace("+", r"\+")):
            load_weights(path, program, "Xor")
        assert name


def test_a_file_larger_than_the_memory_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save_safetensors(tmp_path / "big.safetensors", {"w": np.zeros(2**19, np.float32)})
    monkeypatch.setenv("NNC_MEMORY_BUDGET", "1MiB")
    with pytest.raises(ResourceError, match="more than the memory budget of 1,048,576 bytes"):
        read_tensor_file(path)


@pytest.mark.parametrize("case", ["truncated", "header_too_large", "unknown_dtype", "shape"])
def test_resume_falls_back_past_a_damaged_safetensors_checkpoint(case: str, tmp_path: Path) -> None:
    older = _checkpoint()
    older.state.batch = 0
    write_checkpoint(tmp_path, older)
    newest = write_checkpoint(tmp_path, _checkpoint())
    data = newest.read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    if case == "truncated":
        newest.write_bytes(data[: len(data) // 2])
    elif case == "header_too_large":
        newest.write_bytes((MAX_HEADER * 2).to_bytes(8, "little") + data[8:])
    else:
        entry = header["weights/w"]
        if case == "unknown_dtype":
            entry["dtype"] = "F8_E4M3"
        else:
            entry["shape"] = [3, 3]
        text = json.dumps(header).encode().ljust(size)
        newest.write_bytes(data[:8] + text + data[8 + size :])
    warnings: list[str] = []
    found = latest_checkpoint(tmp_path, warnings.append)
    assert found is not None and found.path is not None
    assert found.path.name == "epoch-000003.safetensors"
    assert len(warnings) == 1
    assert warnings[0].startswith(f"checkpoint {newest} is damaged and was skipped")
    assert "trying the previous one (epoch-000003.safetensors)" in warnings[0]
