"""Canonical weights: deterministic initialisation, and files read without pickle with
a clear error for every kind of bad content."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc.errors import WeightsError
from nnc.ir.weights import init_weights, load_npz, load_weights, save_npz

XOR = nnc.load("examples/xor.nn")


def test_initial_weights_are_deterministic_and_per_parameter() -> None:
    a = init_weights(XOR, "Xor", seed=7)
    b = init_weights(XOR, "Xor", seed=7)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["dense_1.weight"], init_weights(XOR, "Xor", 8)["dense_1.weight"])
    # adding a layer leaves the others' initial values alone
    bigger = nnc.parse("model Xor { input x: [2]  dense(5) sigmoid  dense(1) sigmoid  dense(1) }")
    c = init_weights(bigger, "Xor", seed=7)
    assert np.array_equal(a["dense_1.weight"], c["dense_1.weight"])
    assert np.array_equal(a["dense_2.weight"], c["dense_2.weight"])


def test_glorot_uniform_limit() -> None:
    w = init_weights(nnc.parse("model M { input x: [300]  dense(100) }"), "M", 0)
    limit = np.sqrt(6.0 / (300 + 100))
    assert np.abs(w["dense_1.weight"]).max() <= limit
    assert np.abs(w["dense_1.weight"]).max() > 0.99 * limit  # 30,000 draws reach the edge


def test_orthogonal_recurrent_weights() -> None:
    w = init_weights(nnc.parse("model M { input x: [t, 3]  rnn(6) }"), "M", 0)["rnn_1.weight_hh"]
    np.testing.assert_allclose(w @ w.T, np.eye(6), atol=1e-6)


def test_round_trip(tmp_path: Path) -> None:
    w = init_weights(XOR, "Xor", seed=7)
    path = save_npz(tmp_path / "w.npz", w)
    loaded = load_weights(path, XOR, "Xor")
    assert all(np.array_equal(w[k], loaded[k]) for k in w)
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]  # no temporary file left


def bad(tmp_path: Path, **changes: object) -> Path:
    w: dict[str, object] = dict(init_weights(XOR, "Xor", seed=7))
    for k, v in changes.items():
        key = k.replace("__", ".")
        if v is None:
            del w[key]
        else:
            w[key] = v
    return save_npz(tmp_path / "bad.npz", w)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"dense_1__weight": np.zeros((2, 5), np.float32)},
            "tensor 'dense_1.weight' has shape [2, 5]; the model expects [5, 2]",
        ),
        (
            {"dense_1__weight": np.zeros((5, 2), np.int32)},
            "tensor 'dense_1.weight' has dtype int32; expected a float type",
        ),
        ({"dense_2__bias": None}, "is missing tensor(s) dense_2.bias"),
        (
            {"dense_9__bias": np.zeros(1, np.float32)},
            "has tensor(s) the model does not: dense_9.bias",
        ),
        (
            {"dense_2__bias": np.array([np.nan], np.float32)},
            "tensor 'dense_2.bias' holds NaN or infinite values",
        ),
    ],
)
def test_bad_tensors(tmp_path: Path, changes: dict[str, object], message: str) -> None:
    path = bad(tmp_path, **changes)
    with pytest.raises(WeightsError) as info:
        load_weights(path, XOR, "Xor")
    assert message in info.value.message
    assert str(path) in info.value.message


def test_truncated_file(tmp_path: Path) -> None:
    path = save_npz(tmp_path / "w.npz", init_weights(XOR, "Xor", 7))
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(WeightsError, match=r"w\.npz is not a readable \.npz archive"):
        load_npz(path)


def test_random_bytes_and_missing_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(WeightsError, match="not a zip file"):
        load_npz(junk)
    with pytest.raises(WeightsError, match="no such weights file"):
        load_npz(tmp_path / "nope.npz")


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    """An .npz entry holding a pickle (an object array) is never unpickled."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    path = tmp_path / "pickle.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("dense_1.weight.npy", buffer.getvalue())
    with pytest.raises(WeightsError, match=r"not a readable \.npz archive"):
        load_npz(path)
