"""Fitting data to a model: shapes, targets per loss, the validation split, standardising."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc.data import Standardizer, fit_inputs, prepare, split_indices
from nnc.errors import DataError
from nnc.ir.training import Recipe
from nnc.ir.types import TensorType


def recipe(program: nnc.Program) -> Recipe:
    r = next(iter(program.recipes.values()))
    assert isinstance(r, Recipe)
    return r


def test_digits_reshape_to_images() -> None:
    program = nnc.load("examples/digits_cnn.nn")
    data = prepare(program, recipe(program))
    assert data.train.x.shape == (1438, 1, 8, 8) and data.validation is not None
    assert data.validation.x.shape == (359, 1, 8, 8)
    assert data.train.y.shape == (1438, 10) and set(data.train.y.sum(axis=1)) == {1.0}


def test_lenet_upscales_to_32x32() -> None:
    program = nnc.load("examples/lenet5.nn")
    data = prepare(program, recipe(program))
    assert data.train.x.shape == (1438, 1, 32, 32) and data.train.x.max() == 1.0


def test_symbolic_dim_takes_the_data_length() -> None:
    t1 = TensorType(shape=("t", 1))
    assert fit_inputs(np.zeros((5, 20, 1)), t1, "d").shape == (5, 20, 1)
    # A sequence of scalars gains its feature axis.
    assert fit_inputs(np.zeros((5, 20)), t1, "d").shape == (5, 20, 1)
    with pytest.raises(DataError) as err:
        fit_inputs(np.zeros((5, 20, 2)), t1, "d.npz")
    assert err.value.message == (
        "d.npz: samples have shape [20, 2] but the model input is [t, 1]: dim 1 expected 1, "
        "received 2"
    )


def test_static_shape_mismatch_names_the_dim() -> None:
    with pytest.raises(DataError) as err:
        fit_inputs(np.zeros((5, 1, 8, 9)), TensorType(shape=(1, 8, 8)), "x.npz")
    assert err.value.message.endswith("dim 2 expected 8, received 9")
    with pytest.raises(DataError) as err:
        fit_inputs(np.zeros((5, 65)), TensorType(shape=(1, 8, 8)), "x.npz")
    assert err.value.message.endswith("expected 64 values per sample, received 65 values")


def test_autoencoder_targets_are_the_inputs() -> None:
    program = nnc.load("examples/autoencoder.nn")
    data = prepare(program, recipe(program))
    assert np.array_equal(data.train.x, data.train.y)
    assert data.task.kind == "regression"


def test_xor_targets_are_float_columns_and_binary() -> None:
    program = nnc.load("examples/xor.nn")
    data = prepare(program, recipe(program))
    assert data.train.y.dtype == np.float32 and data.train.y[:, 0].tolist() == [0, 1, 1, 0]
    assert data.task.kind == "binary" and data.validation is None


def test_split_is_seeded_disjoint_and_ordered() -> None:
    train, val = split_indices(150, 0.2, seed=3)
    assert len(val) == 30 and len(train) == 120
    assert set(train).isdisjoint(val) and sorted([*train, *val]) == list(range(150))
    assert list(train) == sorted(train) and list(val) == sorted(val)
    again, _ = split_indices(150, 0.2, seed=3)
    other, _ = split_indices(150, 0.2, seed=4)
    assert np.array_equal(train, again) and not np.array_equal(train, other)
    # The documented procedure, spelled out.
    import zlib

    order = np.random.default_rng([3, zlib.crc32(b"validation")]).permutation(150)
    assert np.array_equal(val, np.sort(order[120:]))


def test_split_that_leaves_nothing_is_an_error(tmp_path: Path) -> None:
    program = nnc.parse(
        "model M {\n    input x: [2]\n    dense(1)\n}\n"
        "train M {\n    data xor\n    validation 0.2\n    loss mse\n}\n",
        "m.nn",
    )
    with pytest.raises(DataError) as err:
        prepare(program, recipe(program))
    assert err.value.message == (
        "validation 0.2 of the 4 samples of dataset 'xor' leaves 0 for validation and 4 for "
        "training; both need at least one"
    )
    assert str(err.value.span) == "m.nn:7:5"


def test_standardisation_uses_the_training_split_only() -> None:
    program = nnc.load("examples/mlp_4_5_5_3.nn")
    data = prepare(program, recipe(program))
    assert data.standardizer is not None and data.validation is not None
    np.testing.assert_allclose(data.train.x.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(data.train.x.std(axis=0), 1, atol=1e-5)
    # The validation split is transformed with the training statistics, not its own.
    assert np.abs(data.validation.x.mean(axis=0)).max() > 1e-3


def test_standardizer_zero_deviation_and_file_round_trip(tmp_path: Path) -> None:
    x = np.array([[1.0, 7.0], [3.0, 7.0], [5.0, 7.0]], dtype=np.float32)
    s = Standardizer.fit(x, TensorType(shape=(2,)))
    assert s.std.tolist() == [[pytest.approx(1.6329932), 1.0]]
    assert s.apply(x)[:, 1].tolist() == [0, 0, 0]
    back = Standardizer.load(s.save(tmp_path / "standardize.npz"))
    assert np.array_equal(back.mean, s.mean) and np.array_equal(back.std, s.std)


def test_sequence_statistics_are_shared_over_time() -> None:
    x = np.arange(24, dtype=np.float32).reshape(2, 4, 3)
    s = Standardizer.fit(x, TensorType(shape=("t", 3)))
    assert s.mean.shape == (1, 1, 3)
    # Any sequence length can be standardised with them.
    assert s.apply(np.zeros((1, 9, 3), dtype=np.float32)).shape == (1, 9, 3)
