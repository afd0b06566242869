"""The language's constructs, each lowered to the IR it should produce."""

from __future__ import annotations

import nnc
from nnc.ir.initializers import HeNormal, Normal
from nnc.ir.training import Adam, CrossEntropy, EarlyStopping, StepLr, TopK


def nodes(source: str, model: str = "M") -> list[tuple[str, str, tuple[str, ...]]]:
    m = nnc.parse(source).models[model]
    return [(n.name, n.op, n.inputs) for n in m.nodes]


def test_stack_and_activation_sugar_are_the_same_ir() -> None:
    a = nnc.parse("model M { input x: [2]  dense(5) sigmoid }")
    b = nnc.parse("model M { input x: [2]  dense(5, activation = sigmoid) }")
    assert a == b
    assert nodes("model M { input x: [2]  dense(5) sigmoid }") == [
        ("dense_1", "dense", ("x",)),
        ("sigmoid_1", "sigmoid", ("dense_1",)),
    ]


def test_keyword_and_positional_arguments_and_literals() -> None:
    m = nnc.parse(
        "model M { input x: [3, 8, 8]\n"
        "  conv2d(4, 3, stride = 2, padding = same, bias = false, init = he_normal)\n"
        "  flatten  dense(2, init = normal(0, 1e-3))  leaky_relu(0.2) }"
    ).models["M"]
    conv, _, dense, leaky = m.nodes
    assert (conv.filters, conv.kernel, conv.stride, conv.padding) == (4, (3, 3), (2, 2), "same")
    assert conv.bias is False and conv.init == HeNormal()
    assert dense.init == Normal(mean=0.0, std=0.001)
    assert leaky.alpha == 0.2


def test_comments_and_whitespace_are_insignificant() -> None:
    a = nnc.parse("model M{input x:[2] dense(1)}")
    b = nnc.parse("# c\nmodel M {   # the model\n  input x: [2]\n\n  dense(1)   # out\n}\n")
    assert a == b


def test_skip_connection_with_add() -> None:
    assert nodes("model M { input x: [4]  y = x |> dense(4) |> relu  output x + y }") == [
        ("dense_1", "dense", ("x",)),
        ("y", "relu", ("dense_1",)),
        ("add_1", "add", ("x", "y")),
    ]


def test_concat_with_several_inputs_and_outputs() -> None:
    m = nnc.parse(
        "model M { input a: [3]  input b: [5]\n"
        "  c = concat(a, b)\n  h = c |> dense(4)\n  output h, c }"
    ).models["M"]
    assert [i.name for i in m.inputs] == ["a", "b"]
    assert m.outputs == ("h", "c")
    assert [t.shape for t in m.output_types] == [(4,), (8,)]


def test_pipe_stage_takes_extra_tensor_inputs() -> None:
    a = nnc.parse("model M { input x: [2]  input y: [2]  output x |> add(y) }")
    b = nnc.parse("model M { input x: [2]  input y: [2]  output x + y }")
    assert a == b


def test_model_used_as_layer() -> None:
    program = nnc.load("examples/autoencoder.nn")
    ae = program.models["Autoencoder"]
    assert [(n.name, n.op, n.model) for n in ae.nodes] == [  # type: ignore[union-attr]
        ("encoder_1", "call", "Encoder"),
        ("decoder_1", "call", "Decoder"),
    ]
    assert ae.output_types[0].shape == (64,)


def test_block_expansion_names_and_binding() -> None:
    program = nnc.load("examples/resnet_block.nn")
    names = [n.name for n in program.models["ResNet"].nodes]
    assert names[:4] == ["conv2d_1", "relu_1", "residual_1_conv2d_1", "residual_1_batchnorm_1"]
    assert "residual_2_add_1" in names
    conv = program.models["ResNet"].node("residual_1_conv2d_1")
    assert conv.filters == 16  # type: ignore[union-attr]  # the block parameter c


def test_rebinding_a_name() -> None:
    assert nodes("model M { input x: [2]  y = x |> dense(2)  y = y |> relu  output y }") == [
        ("y", "dense", ("x",)),
        ("y_2", "relu", ("y",)),
    ]


def test_alias_and_explicit_name() -> None:
    assert nodes("model M { input x: [2]  z = x  dense(3, name = fc)  output z + z }") == [
        ("fc", "dense", ("x",)),
        ("add_1", "add", ("x", "x")),
    ]


def test_auto_names_skip_names_written_elsewhere() -> None:
    got = nodes("model M { input x: [2]  dense(2)  dense_1 = x |> dense(2)  output dense_1 }")
    assert [n for n, _, _ in got] == ["dense_2", "dense_1"]


def test_symbolic_dims_and_int_inputs() -> None:
    m = nnc.parse("model M { input tokens: int64[t]  embedding(50, 8)  lstm(16) }").models["M"]
    assert str(m.inputs[0].type) == "int64[t]"
    assert m.output_types[0].shape == (16,)


def test_train_recipe_settings() -> None:
    program = nnc.parse(
        "model M { input x: [64]  dense(10) }\n"
        "train M {\n  data digits, scale = unit\n  loss cross_entropy\n"
        "  optimizer adam(lr = 1e-3, beta2 = 0.99)\n  schedule step(every = 5, gamma = 0.1)\n"
        "  epochs 3\n  batch 16\n  l2 1e-4\n  metrics accuracy, top_k(3)\n"
        "  early_stopping monitor = val_loss, patience = 2\n  validation 0.25\n  seed 42\n}\n"
    )
    r = program.recipes["M"]
    assert r.model == "M" and r.data.name == "digits" and r.data.scale == "unit"  # type: ignore[union-attr]
    assert r.loss == CrossEntropy(from_logits=True)  # resolved: the model ends in dense
    assert r.optimizer == Adam(lr=1e-3, beta2=0.99)
    assert r.schedule == StepLr(every=5, gamma=0.1)  # type: ignore[union-attr]
    assert (r.epochs, r.batch, r.l2, r.seed, r.validation) == (3, 16, 1e-4, 42, 0.25)  # type: ignore[union-attr]
    assert r.metrics[1] == TopK(k=3)  # type: ignore[union-attr]
    assert r.early_stopping == EarlyStopping(monitor="val_loss", patience=2)  # type: ignore[union-attr]


def test_from_logits_defaults_from_the_model() -> None:
    probs = nnc.load("examples/mlp_4_5_5_3.nn").recipes["Mlp"]
    logits = nnc.load("examples/digits_mlp.nn").recipes["DigitsMLP"]
    assert probs.loss == CrossEntropy(from_logits=False)  # type: ignore[union-attr]
    assert logits.loss == CrossEntropy(from_logits=True)  # type: ignore[union-attr]


def test_batch_modes() -> None:
    base = "model M { input x: [2]  dense(1) }\ntrain M { data xor  loss sse  batch %s }"
    assert nnc.parse(base % "all").recipes["M"].batch == "all"
    assert nnc.parse(base % "1").recipes["M"].batch == 1


def test_gan_recipe_names_two_models() -> None:
    r = nnc.load("examples/gan.nn").recipes["DigitsGAN"]
    assert r.models == ("Generator", "Discriminator")
    assert r.kind == "gan" and r.loss == "non_saturating" and r.from_logits is True  # type: ignore[union-attr]


def test_strings_are_escaped_in_both_directions() -> None:
    src = 'model M { input x: [2]  dense(1) }\ntrain M { data "we\\"ird\\\\path.csv"  loss mse }'
    program = nnc.parse(src)
    assert program.recipes["M"].data.path == 'we"ird\\path.csv'  # type: ignore[union-attr]
    assert nnc.parse(nnc.format(program)) == program
