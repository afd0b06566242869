"""Every standard pass on at least two networks: the ops change as promised, and the
outputs stay equal (float64 reference forward, TOLERANCE) where they should."""

from __future__ import annotations

import numpy as np
import pytest

import nnc
from nnc.errors import NameResolutionError, RewriteError
from nnc.ir.weights import init_weights
from nnc.rewrite import (
    drop_recipes,
    extract,
    fold_batchnorm,
    freeze,
    insert_after,
    rename,
    replace_activation,
    set_input_shape,
    strip_dropout,
)
from tests.api.helpers import TOLERANCE, batch, max_deviation, trained_like
from tests.api.reference import forward
from tests.conftest import EXAMPLES


def load(name: str) -> nnc.Program:
    return nnc.load(EXAMPLES / f"{name}.nn")


def ops(program: nnc.Program, model: str | None = None) -> list[str]:
    return [n.op for n in program.model(model).nodes]


# -- strip dropout --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("example", "model"), [("digits_cnn", "DigitsCNN"), ("digits_mlp", "DigitsMLP")]
)
def test_strip_dropout(example: str, model: str) -> None:
    p = load(example)
    w = trained_like(p, model)
    q, w2 = strip_dropout(p, w)
    assert "dropout" in ops(p) and "dropout" not in ops(q)
    assert len(q.model().nodes) == len(p.model().nodes) - 1
    assert w2 is not None and w2.keys() == w.keys()
    assert max_deviation((p, model, w), (q, model, w2), batch(p, model)) == 0.0


# -- fold batchnorm -------------------------------------------------------------------


def test_fold_batchnorm_resnet_block() -> None:
    p = load("resnet_block")
    w = trained_like(p, "ResNet")
    result = fold_batchnorm(p, w)
    q, w2 = result
    assert ops(p).count("batchnorm") == 4 and "batchnorm" not in ops(q)
    assert len(result.applied) == 4 and result.skipped == []
    assert not any(k.endswith("running_mean") for k in w2)  # type: ignore[union-attr]
    # the add that read the second batchnorm now reads the folded conv
    assert q.model().node("residual_1_add_1").inputs == ("relu_1", "residual_1_conv2d_2")
    dev = max_deviation((p, "ResNet", w), (q, "ResNet", w2), batch(p, "ResNet"))  # type: ignore[arg-type]
    assert dev < TOLERANCE
    # parameters: 4 * (2*16 batchnorm) gone, 2 new conv biases were there already
    assert nnc.count_params(q, "ResNet") == nnc.count_params(p, "ResNet") - 4 * 32


def _norm_zoo() -> nnc.Program:
    """Foldable pairs of every kind, plus two places that cannot fold."""
    b = nnc.Builder("Zoo")
    x = b.input("x", [3, 10])
    a = b.batchnorm(b.conv1d(x, 4, 3, padding="same", bias=False))
    seq = b.batchnorm(b.dense(b.layer("reshape", a, [10, 4]), 6))  # a [t, units] dense
    c = b.conv1d(seq, 4, 1)
    shared = b.add(c, b.batchnorm(c))  # the conv's output is read twice
    img = b.layer("reshape", shared, [4, 2, 3])
    t = b.batchnorm(b.conv2d_transpose(img, 3, 2, stride=2, padding="same"))
    v = b.batchnorm(b.dense(b.flatten(t), 5), name="head_bn")
    b.output(v)
    return b.build()


def test_fold_batchnorm_every_layer_kind_and_reasons() -> None:
    p = _norm_zoo()
    w = trained_like(p, "Zoo", seed=3)
    result = fold_batchnorm(p, w)
    q, w2 = result
    folded = {e.nodes for e in result.applied}
    assert folded == {
        ("conv1d_1", "batchnorm_1"),
        ("conv2d_transpose_1", "batchnorm_4"),
        ("dense_2", "head_bn"),
    }
    reasons = {e.nodes: e.reason for e in result.skipped}
    assert reasons == {
        ("dense_1", "batchnorm_2"): "the batchnorm normalises axis 0 of [10, 6] (the sequence "
        "axis), not the units of 'dense_1'",
        ("conv1d_2", "batchnorm_3"): "the output of 'conv1d_2' is also read by add_1",
    }
    assert ops(q).count("batchnorm") == 2
    assert q.model().node("conv1d_1").bias is True  # type: ignore[union-attr]
    dev = max_deviation((p, "Zoo", w), (q, "Zoo", w2), batch(p, "Zoo"))  # type: ignore[arg-type]
    assert dev < TOLERANCE
    assert "skipped: the output of 'conv1d_2' is also read by add_1" in result.explain()


def test_fold_batchnorm_without_weights_changes_the_graph_only() -> None:
    q, w = fold_batchnorm(load("resnet_block"))
    assert w is None and "batchnorm" not in ops(q)


# -- replace an activation -------------------------------------------------------------


@pytest.mark.parametrize(
    ("example", "old", "new"),
    [
        ("digits_cnn", "relu", "gelu"),
        ("mlp_4_5_5_3", "sigmoid", "tanh"),
        ("resnet_block", "relu", "silu"),
    ],
)
def test_replace_activation_equals_the_network_written_with_it(
    example: str, old: str, new: str
) -> None:
    p = load(example)
    text = (EXAMPLES / f"{example}.nn").read_text()
    written = nnc.parse(
        text.replace(f") {old}", f") {new}")
        .replace(f"|> {old}", f"|> {new}")
        .replace(f"output {old}(", f"output {new}(")
    )
    q, _ = replace_activation(p, old, new)
    assert ops(q).count(new) == ops(p).count(old) > 0 and old not in ops(q)
    assert [n.name for n in q.model().nodes] == [n.name for n in written.model().nodes]
    assert q == written
    model = p.model().name
    w = trained_like(p, model)
    x = batch(p, model)
    np.testing.assert_array_equal(forward(q, model, w, x)[0], forward(written, model, w, x)[0])


def test_replace_activation_refuses_prelu_and_bad_attributes() -> None:
    with pytest.raises(nnc.NncError, match="parameter-free activations; prelu learns"):
        replace_activation(load("xor"), "sigmoid", "prelu")
    with pytest.raises(nnc.NncError, match=r"'new' must be an activation\. Received: dense"):
        replace_activation(load("xor"), "sigmoid", "dense")
    with pytest.raises(nnc.NncError, match="elu has no argument 'slope'"):
        replace_activation(load("xor"), "sigmoid", "elu", slope=2.0)


# -- freeze ---------------------------------------------------------------------------


def test_freeze_mlp() -> None:
    p = load("mlp_4_5_5_3")
    w = trained_like(p, "Mlp")
    q, w2 = freeze(p, ["dense_1", "dense_2"], w)
    assert [getattr(n, "trainable", None) for n in q.model().find("dense")] == [False, False, True]
    assert nnc.count_params(q, "Mlp", trainable_only=True) == 18
    assert nnc.count_params(q, "Mlp") == 73
    assert max_deviation((p, "Mlp", w), (q, "Mlp", w2), batch(p, "Mlp")) == 0.0  # type: ignore[arg-type]
    assert "25 frozen" in q.summary()
    back, _ = freeze(q, "dense_*", trainable=True)
    assert back == p


def test_freeze_a_block_by_glob() -> None:
    p = load("resnet_block")
    q, _ = freeze(p, "residual_1_*")
    frozen = [n.name for n in q.model().nodes if getattr(n, "trainable", True) is False]
    assert frozen == [
        "residual_1_conv2d_1",
        "residual_1_batchnorm_1",
        "residual_1_conv2d_2",
        "residual_1_y_2",
    ]
    assert (
        nnc.count_params(p, "ResNet", trainable_only=True)
        - nnc.count_params(q, "ResNet", trainable_only=True)
        == 2 * 2320 + 2 * 32
    )


def test_freeze_errors() -> None:
    with pytest.raises(RewriteError, match=r"node 'sigmoid_1' \(sigmoid\) has no parameters"):
        freeze(load("xor"), "sigmoid_1")
    with pytest.raises(NameResolutionError, match="no node matching 'desne_1'") as err:
        freeze(load("xor"), "desne_1")
    assert err.value.hint == "did you mean 'dense_1'?"
    with pytest.raises(RewriteError, match="calls model 'Encoder'") as call:
        freeze(load("autoencoder"), "encoder_1")
    assert call.value.hint == "freeze the nodes of 'Encoder' with model='Encoder'"


# -- set the input shape ---------------------------------------------------------------


def test_set_input_shape_symbolic_to_static() -> None:
    p = load("sequence_rnn")
    w = trained_like(p, "WaveRNN")
    q, w2 = set_input_shape(p, [24, 1], w)
    assert q.model().inputs[0].type.shape == (24, 1)
    x = batch(p, "WaveRNN", t=24)
    assert max_deviation((p, "WaveRNN", w), (q, "WaveRNN", w2), x) == 0.0  # type: ignore[arg-type]


def test_set_input_shape_resnet_larger_images() -> None:
    p, _ = drop_recipes(load("resnet_block"))
    w = trained_like(p, "ResNet")
    q, w2 = set_input_shape(p, [1, 12, 12], w)
    assert q.model().node("residual_2_relu_1").type.shape == (16, 12, 12)
    text = (EXAMPLES / "resnet_block.nn").read_text().replace("[1, 8, 8]", "[1, 12, 12]")
    written = nnc.parse(text, check=False).model_copy(update={"recipes": {}})
    assert q == nnc.check(written)
    # the same function: the reference runs the original graph on 12x12 images too
    x = np.random.default_rng(1).normal(size=(3, 1, 12, 12))
    assert w2 is not None
    np.testing.assert_array_equal(forward(p, "ResNet", w, x)[0], forward(q, "ResNet", w2, x)[0])


def test_set_input_shape_errors() -> None:
    p = load("resnet_block")
    with pytest.raises(RewriteError, match="dataset 'digits' has samples of shape") as err:
        set_input_shape(p, [1, 12, 12])
    assert err.value.hint is not None and "drop_recipes" in err.value.hint
    cnn, _ = drop_recipes(load("digits_cnn"))
    with pytest.raises(
        RewriteError,
        match=r"set-input-shape: the weights: tensor 'dense_1.weight' has shape \[64, 128\]; "
        r"the model expects \[64, 288\]",
    ):
        set_input_shape(cnn, [1, 10, 10], init_weights(cnn, "DigitsCNN"))


# -- rename ---------------------------------------------------------------------------


def test_rename_nodes_inputs_and_models() -> None:
    p = load("mlp_4_5_5_3")
    w = trained_like(p, "Mlp")
    q, w2 = rename(p, {"dense_1": "hidden", "x": "features"}, w, models={"Mlp": "Iris"})
    assert list(q.models) == ["Iris"] and q.recipes["Mlp"].model == "Iris"  # type: ignore[union-attr]
    assert q.models["Iris"].inputs[0].name == "features"
    assert q.models["Iris"].node("sigmoid_1").inputs == ("hidden",)
    assert sorted(w2)[:2] == ["dense_2.bias", "dense_2.weight"] and "hidden.weight" in w2  # type: ignore[arg-type]
    assert max_deviation((p, "Mlp", w), (q, "Iris", w2), batch(p, "Mlp")) == 0.0  # type: ignore[arg-type]
    # .nn text written from the result parses back to it
    assert nnc.parse(nnc.format(q)) == q


def test_rename_swaps_and_calls() -> None:
    p = load("autoencoder")
    w = trained_like(p, "Autoencoder")
    q, w2 = rename(p, {"encoder_1": "decoder_1", "decoder_1": "encoder_1"}, w)
    assert q.model().node("encoder_1").model == "Decoder"  # type: ignore[union-attr]
    assert w2["encoder_1.dense_2.weight"].shape == (64, 32)  # type: ignore[index]
    np.testing.assert_array_equal(w2["encoder_1.dense_2.weight"], w["decoder_1.dense_2.weight"])  # type: ignore[index]
    x = batch(p, "Autoencoder")
    assert max_deviation((p, "Autoencoder", w), (q, "Autoencoder", w2), x) == 0.0  # type: ignore[arg-type]
    r, _ = rename(p, models={"Encoder": "Squeeze"})
    assert r.models["Autoencoder"].node("encoder_1").model == "Squeeze"  # type: ignore[union-attr]
    with pytest.raises(NameResolutionError, match="no node or input 'encoder'"):
        rename(p, {"encoder": "e"})
    with pytest.raises(
        RewriteError, match="two values of model 'Autoencoder' would be named 'decoder_1'"
    ):
        rename(p, {"encoder_1": "decoder_1"})


# -- extract --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("example", "model", "cut"),
    [("digits_cnn", "DigitsCNN", "flatten_1"), ("resnet_block", "ResNet", "residual_1_relu_1")],
)
def test_extract_two_halves_compose_to_the_whole(example: str, model: str, cut: str) -> None:
    p = load(example)
    w = trained_like(p, model)
    m = p.model()
    head, wh = extract(p, m.inputs[0].name, cut, w, name="Head")
    tail, wt = extract(p, cut, m.outputs[0], w, name="Tail")
    assert list(head.models) == ["Head"] and head.recipes == {}
    assert [n.name for n in head.models["Head"].nodes] + [
        n.name for n in tail.models["Tail"].nodes
    ] == [n.name for n in m.nodes]
    assert wh is not None and wt is not None and (wh.keys() | wt.keys()) == w.keys()
    x = batch(p, model)
    middle = forward(head, "Head", wh, x)[0]
    whole = forward(p, model, w, x)[0]
    assert np.max(np.abs(forward(tail, "Tail", wt, middle)[0] - whole)) == 0.0


def test_extract_errors() -> None:
    p = load("resnet_block")
    with pytest.raises(RewriteError, match="reads the model input 'image'"):
        extract(p, "residual_2_y", "residual_2_relu_1")
    with pytest.raises(RewriteError, match="nothing between 'relu_1' and conv2d_1 reads"):
        extract(p, ["image", "relu_1"], "conv2d_1")
    with pytest.raises(NameResolutionError, match="no value 'dense_7'"):
        extract(p, "dense_7", "dense_1")


def test_extract_keeps_called_models() -> None:
    p = load("autoencoder")
    q, _ = extract(p, "encoder_1", "decoder_1", name="Decode")
    assert list(q.models) == ["Decode", "Decoder"]
    assert nnc.count_params(q, "Decode") == nnc.count_params(p, "Decoder")


# -- insert a layer -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("example", "model", "after", "layer"),
    [
        ("xor", "Xor", "sigmoid_1", "dropout(0.3)"),
        ("digits_cnn", "DigitsCNN", "maxpool_1", "linear"),
        ("house_prices", "HousePrices", "features", "dropout(rate = 0.1)"),
    ],
)
def test_insert_after_keeps_outputs(example: str, model: str, after: str, layer: str) -> None:
    p = load(example)
    w = trained_like(p, model)
    q, w2 = insert_after(p, after, layer, w)
    op = layer.split("(")[0]
    new = q.model().find(op)[-1] if op != "dropout" else q.model().find(op)[0]
    assert new.inputs == (after,)
    assert [n.name for n in q.model().consumers(new.name)] == [
        n.name for n in p.model().consumers(after)
    ]
    assert max_deviation((p, model, w), (q, model, w2), batch(p, model)) == 0.0  # type: ignore[arg-type]


def test_insert_after_draws_new_parameters_like_init_weights() -> None:
    p = load("mlp_4_5_5_3")
    w = trained_like(p, "Mlp")
    q, w2 = insert_after(p, "sigmoid_2", "dense(5, init = he_normal)", w, name="extra", seed=4)
    assert q.model().node("dense_3").inputs == ("extra",)
    fresh = init_weights(q, "Mlp", seed=4)
    np.testing.assert_array_equal(w2["extra.weight"], fresh["extra.weight"])  # type: ignore[index]
    np.testing.assert_array_equal(w2["dense_1.weight"], w["dense_1.weight"])  # type: ignore[index]
    assert nnc.count_params(q, "Mlp") == 73 + 30


def test_insert_after_errors() -> None:
    p = load("xor")
    with pytest.raises(nnc.NncError, match="expected one layer"):
        insert_after(p, "dense_1", "dense(4, activation = relu)")
    with pytest.raises(RewriteError, match="insert-after produced a program that does not check"):
        insert_after(p, "dense_1", "conv2d(4, 3)")


def test_fold_batchnorm_in_a_model_used_twice_folds_each_use() -> None:
    """One model called twice: one rewritten graph, two sets of folded weights."""
    p = nnc.parse(
        "model Enc { input x: [2, 6]  conv1d(3, 3, padding = same)  batchnorm  relu }\n"
        "model Twice { input x: [2, 6]  a = Enc(x)  b = Enc(x)  output a + b }"
    )
    w = trained_like(p, "Twice", seed=7)
    assert not np.array_equal(w["a.batchnorm_1.running_var"], w["b.batchnorm_1.running_var"])
    result = fold_batchnorm(p, w)
    q, w2 = result
    assert [e.model for e in result.applied] == ["Enc"]
    assert [n.op for n in q.models["Enc"].nodes] == ["conv1d", "relu"]
    assert w2 is not None and sorted(w2) == [
        "a.conv1d_1.bias",
        "a.conv1d_1.weight",
        "b.conv1d_1.bias",
        "b.conv1d_1.weight",
    ]
    assert max_deviation((p, "Twice", w), (q, "Twice", w2), batch(p, "Twice")) < TOLERANCE


def test_structure_passes_inside_a_called_model_keep_the_callers_weights() -> None:
    p = nnc.parse(
        "model Enc { input x: [2, 6]  conv1d(3, 3, padding = same)  batchnorm  relu }\n"
        "model Twice { input x: [2, 6]  a = Enc(x)  b = Enc(x)  output a + b }"
    )
    w = trained_like(p, "Twice", seed=7)
    q, w2 = rename(p, {"conv1d_1": "stem"}, w, model="Enc")
    assert w2 is not None and {"a.stem.weight", "b.stem.weight"} <= w2.keys()
    q, w3 = freeze(q, "stem", w2, model="Enc")
    assert nnc.count_params(q, "Twice", trainable_only=True) == 2 * 2 * 3  # the batchnorms
    assert max_deviation((p, "Twice", w), (q, "Twice", w3), batch(p, "Twice")) == 0.0  # type: ignore[arg-type]
    with pytest.raises(RewriteError, match="the weights hold 2 uses of model 'Enc'"):
        extract(p, "x", "batchnorm_1", w, model="Enc")
