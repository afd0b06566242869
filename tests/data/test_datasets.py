"""Built-in data sets: each matches the catalog; the shipped ones are the known data."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import nnc
from nnc.data import CATALOG, load_builtin
from nnc.data.preparation import transform_builtin
from nnc.errors import DataError, RecipeError
from nnc.ir.training import Dataset


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_dataset_matches_catalog(name: str) -> None:
    info = CATALOG[name]
    s = load_builtin(name, seed=0)
    assert s.x.dtype == np.float32
    assert s.x.shape[1:] == info.features
    assert np.isfinite(s.x).all()
    assert s.y is not None and len(s.y) == len(s.x)
    if info.target == "class":
        assert s.y.dtype == np.int64 and s.y.shape == (len(s.x), *info.target_shape)
        assert s.classes == info.classes
        assert sorted(set(s.y.ravel().tolist())) == list(range(info.classes))
    else:
        assert s.y.dtype == np.float32 and s.y.shape[1:] == info.target_shape


def test_digits_are_the_uci_test_set() -> None:
    s = load_builtin("digits")
    assert s.x.shape == (1797, 64)
    assert np.bincount(s.y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert s.x.min() == 0 and s.x.max() == 16 and (s.x == np.round(s.x)).all()
    assert float(s.x.sum()) == 561718.0
    digest = hashlib.sha256(s.x.tobytes() + s.y.tobytes()).hexdigest()
    assert digest == "faf2d98f61250c1cdc0b114323133d3c58da04f5c5d28bb78e4bde3c936a75b1"


def test_iris_is_fishers_data() -> None:
    s = load_builtin("iris")
    assert s.x.shape == (150, 4)
    assert np.bincount(s.y).tolist() == [50, 50, 50]
    # The published summary statistics (cm): sepal length/width, petal length/width.
    np.testing.assert_allclose(s.x.mean(axis=0), [5.843, 3.057, 3.758, 1.199], atol=1e-3)
    np.testing.assert_allclose(s.x.min(axis=0), [4.3, 2.0, 1.0, 0.1], atol=1e-6)
    np.testing.assert_allclose(s.x.max(axis=0), [7.9, 4.4, 6.9, 2.5], atol=1e-6)
    assert s.x[0].tolist() == pytest.approx([5.1, 3.5, 1.4, 0.2])


@pytest.mark.parametrize(
    ("name", "truth"), [("xor", [0, 1, 1, 0]), ("and", [0, 0, 0, 1]), ("or", [0, 1, 1, 1])]
)
def test_truth_tables(name: str, truth: list[int]) -> None:
    s = load_builtin(name, seed=123)
    assert s.x.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert s.y is not None and s.y.shape == (4, 1) and s.y[:, 0].tolist() == truth


@pytest.mark.parametrize("name", ["spirals", "houses", "sine", "waves"])
def test_generated_sets_follow_the_seed(name: str) -> None:
    a, b, c = load_builtin(name, 1), load_builtin(name, 1), load_builtin(name, 2)
    assert np.array_equal(a.x, b.x) and a.y is not None and b.y is not None
    assert np.array_equal(a.y, b.y)
    assert not np.array_equal(a.x, c.x)


def test_generated_set_sizes() -> None:
    assert np.bincount(load_builtin("spirals").y).tolist() == [300, 300, 300]
    assert np.bincount(load_builtin("waves").y).tolist() == [200, 200, 200]
    assert len(load_builtin("houses")) == 500 and len(load_builtin("sine")) == 1000


def test_sine_repeating_the_last_value_scores_about_0_02() -> None:
    # examples/sequence_lstm.nn promises this baseline.
    s = load_builtin("sine", seed=4)
    assert s.y is not None
    baseline = float(np.mean((s.x[:, -1, 0] - s.y[:, 0]) ** 2))
    assert 0.015 < baseline < 0.03


def test_houses_prices_are_positive_thousands() -> None:
    s = load_builtin("houses", seed=11)
    assert s.y is not None
    assert s.y.min() >= 20 and 200 < float(np.median(s.y)) < 600
    size, rooms, garden = s.x[:, 0], s.x[:, 1], s.x[:, 5]
    assert size.min() >= 40 and size.max() <= 250
    assert set(np.unique(rooms)) <= set(range(1, 9)) and set(np.unique(garden)) == {0, 1}
    # The price grows with the size.
    assert np.corrcoef(size, s.y[:, 0])[0, 1] > 0.6


def test_scale_and_upscale_digits() -> None:
    raw = load_builtin("digits").x[:3]
    unit = transform_builtin(raw, Dataset(name="digits", scale="unit"))
    assert unit.min() == 0 and unit.max() == 1 and np.allclose(unit, raw / 16)
    sym = transform_builtin(raw, Dataset(name="digits", scale="symmetric"))
    assert sym.min() == -1 and sym.max() == 1
    big = transform_builtin(raw, Dataset(name="digits", upscale=4))
    assert big.shape == (3, 1024)
    image = big.reshape(3, 32, 32)
    # Nearest neighbour: each 4x4 block repeats one original pixel.
    assert np.array_equal(image[:, ::4, ::4], raw.reshape(3, 8, 8))
    assert np.array_equal(image[:, 3::4, 2::4], raw.reshape(3, 8, 8))


def test_unknown_dataset_suggests_a_name() -> None:
    with pytest.raises(DataError, match="unknown dataset 'digit'") as err:
        load_builtin("digit")
    assert err.value.hint == "did you mean 'digits'?"


def test_scale_on_a_non_image_set_is_rejected_at_check_time() -> None:
    source = (
        "model M {\n    input x: [4]\n    dense(3)\n}\n"
        "train M {\n    data iris, scale = unit\n    loss cross_entropy\n}\n"
    )
    with pytest.raises(RecipeError) as err:
        nnc.parse(source, "m.nn")
    assert "dataset 'iris' has no fixed value range; 'scale = unit' applies" in err.value.message
    assert str(err.value.span) == "m.nn:6:5"


def test_negative_seed_is_rejected() -> None:
    source = (
        "model M {\n    input x: [2]\n    dense(1)\n}\n"
        "train M {\n    data xor\n    loss mse\n    seed -3\n}\n"
    )
    with pytest.raises(nnc.NncError, match=r"greater than or equal to 0\. Received: seed=-3"):
        nnc.parse(source)
