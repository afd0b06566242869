"""Fine-tuning an imported network: ``replace-head`` (nnc.rewrite.head) swaps the
classifier's last dense layer for a fresh one of the new size, keeping every other
weight bitwise; ``freeze`` freezes the backbone; ``nnc train --weights`` starts from
the imported weights. benchmarks/finetune_resnet18.py runs the same path on a full
ResNet-18 and quotes its accuracy.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nnc
from nnc import passes
from nnc.errors import ArgumentError, RewriteError
from nnc.ir.weights import init_weights, save_weights_file
from tests.conftest import require

RECIPE = """
train {model} {{
    data       digits, scale = unit, upscale = {upscale}
    validation 0.2
    loss       cross_entropy
    optimizer  adam(lr = 0.3)
    epochs     {epochs}
    batch      32
    metrics    accuracy
    seed       0
}}
"""


@pytest.fixture(scope="module")
def tiny(one_torch_thread: None) -> tuple[object, object]:
    """A small residual net written in torch (tests/architectures/nets.py: 1 grey
    channel, two stages of 16 and 32 channels, 1,000 classes; convolutions initialised
    as torchvision does), exported at opset 17 and imported: (torch module, import)."""
    for module in ("torch", "onnx"):
        require(module)
    import torch
    from torch import nn

    from nnc.backends import onnx as onnx_backend
    from tests.architectures.check import export
    from tests.architectures.nets import BasicBlock, resnet

    torch.manual_seed(0)
    module = resnet(BasicBlock, [1, 1], base=16, channels=1)
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    module.eval()
    return module, onnx_backend.import_model(export(module, (1, 1, 8, 8), 17))


def test_replaced_head_has_torchs_count_and_keeps_every_other_weight(
    tiny: tuple[Any, Any],
) -> None:
    """The imported net gets a 10-class head: its parameter count is that of the same
    torch module with its last layer replaced by ``Linear(32, 10)``; every backbone
    tensor is bitwise the imported one, and the new head is what ``init_weights``
    draws for it."""
    from torch import nn

    from tests.architectures.nets import folded_parameter_count

    module, imported = tiny
    program, weights = imported.program, imported.weights
    before = nnc.count_params(program, imported.model)
    assert before == folded_parameter_count(module)

    result = passes.run(program, [passes.get("replace-head", classes=10)], weights=weights)
    replaced = copy.deepcopy(module)
    replaced[-1] = nn.Linear(32, 10)
    after = nnc.count_params(result.program, imported.model)
    assert after == folded_parameter_count(replaced)
    assert before - after == (32 + 1) * (1000 - 10)

    assert result.weights is not None
    head = {"dense_1.weight", "dense_1.bias"}
    assert set(result.weights) == set(weights)
    for name in set(weights) - head:
        assert result.weights[name].dtype == weights[name].dtype
        assert np.array_equal(result.weights[name], weights[name]), name
    assert result.weights["dense_1.weight"].shape == (10, 32)
    drawn = init_weights(result.program, result.program.model(), seed=0)
    assert np.array_equal(result.weights["dense_1.weight"], drawn["dense_1.weight"])
    assert np.array_equal(result.weights["dense_1.bias"], np.zeros(10, np.float32))
    assert [e.nodes for e in result.applied] == [("dense_1",)]


def test_replace_head_through_a_softmax_and_from_the_command_line() -> None:
    """The head of the iris MLP is ``dense(3) softmax``: the softmax stays, the dense
    gets 7 units (73 - 18 + 5*7 + 7 = 97 parameters), ``dense_1``/``dense_2`` keep
    their tensors; ``nnc opt``'s spelling of the pass is the same pass."""
    from nnc.cli.opt import parse_pass
    from nnc.rewrite import drop_recipes

    program = drop_recipes(nnc.load("examples/mlp_4_5_5_3.nn")).program
    weights = init_weights(program, "Mlp", seed=3)
    pass_ = parse_pass("replace-head:classes=7,seed=5")
    assert pass_ == passes.get("replace-head", classes=7, seed=5)
    new, new_weights = passes.run(program, [pass_], weights=weights)
    assert nnc.count_params(new, "Mlp") == 97
    assert [n.op for n in new.model().nodes][-2:] == ["dense", "softmax"]
    assert new_weights is not None
    for name in ("dense_1.weight", "dense_1.bias", "dense_2.weight", "dense_2.bias"):
        assert np.array_equal(new_weights[name], weights[name])
    assert new_weights["dense_3.weight"].shape == (7, 5)
    assert not np.array_equal(
        new_weights["dense_3.weight"], init_weights(new, "Mlp", seed=0)["dense_3.weight"]
    )  # seed=5 draws other values than seed 0


def test_replace_head_refusals_are_typed_and_say_why() -> None:
    unet = nnc.load("examples/unet_blobs.nn")
    with pytest.raises(RewriteError, match=r"has no dense head: its output comes from conv2d"):
        nnc.rewrite.replace_head(unet, 4)
    with pytest.raises(RewriteError, match=r"node 'conv2d_1' is conv2d, not dense"):
        nnc.rewrite.replace_head(nnc.load("examples/digits_cnn.nn"), 4, node="conv2d_1")
    with pytest.raises(ArgumentError, match=r"classes must be a positive integer"):
        nnc.rewrite.replace_head(nnc.load("examples/digits_cnn.nn"), 0)
    # The digits recipe wants 10 classes: the error is the recipe's, at its loss line.
    wants_10 = r"digits' has 10 classes but the model outputs \[4\]"
    with pytest.raises(RewriteError, match=wants_10) as e:
        nnc.rewrite.replace_head(nnc.load("examples/digits_cnn.nn"), 4)
    assert e.value.span is not None and (e.value.span.line, e.value.span.col) == (19, 5)
    assert e.value.hint is not None and "drop-recipes" in e.value.hint


def test_import_replace_head_freeze_and_train_beats_chance(
    tmp_path: Path, tiny: tuple[Any, Any]
) -> None:
    """The imported net with its head replaced by 10 classes and its convolutions
    frozen, trained 3 epochs from the imported weights (``nnc train --weights``) on
    the 8x8 digits (the benchmark upscales them; here that would cost 5 times the
    time): the frozen tensors do not move, the head does, and the validation
    accuracy is far above chance (0.1)."""
    _, imported = tiny
    rewritten = passes.run(
        imported.program,
        [passes.get("replace-head", classes=10), passes.get("freeze", nodes=["conv2d_*"])],
        weights=imported.weights,
    )
    assert rewritten.weights is not None
    start = tmp_path / "start.safetensors"
    save_weights_file(start, rewritten.weights)
    model = rewritten.program.model().name
    text = nnc.format(rewritten.program) + RECIPE.format(model=model, upscale=1, epochs=3)
    program = nnc.parse(text)
    assert nnc.count_params(program, model, trainable_only=True) == 32 * 10 + 10

    result = nnc.fit(program, backend="numpy", weights=start, save=False)
    trained = result.runtime.get_weights()
    for name, value in rewritten.weights.items():
        moved = not np.array_equal(trained[name], value)
        assert moved == name.startswith("dense_1."), name
    assert result.final["val_accuracy"] > 0.4  # 0.61 when written


def test_train_weights_must_fit_and_apply_to_supervised_recipes(tmp_path: Path) -> None:
    """``weights=`` (``nnc train --weights``) is checked against the model, naming the
    tensor; a GAN recipe refuses it."""
    from nnc.errors import TrainingError, WeightsError

    xor = nnc.load("examples/xor.nn")
    weights = init_weights(xor, "Xor", seed=1)
    weights["dense_1.weight"] = np.zeros((3, 2), np.float32)
    bad = tmp_path / "bad.safetensors"
    save_weights_file(bad, weights)
    with pytest.raises(WeightsError, match=r"tensor 'dense_1.weight' has shape \[3, 2\]"):
        nnc.fit(xor, weights=bad, save=False, epochs=1)
    with pytest.raises(TrainingError, match=r"is a gan recipe; starting from given weights"):
        nnc.fit(nnc.load("examples/gan.nn"), weights=bad, save=False, epochs=1)


def test_train_starts_from_the_given_weights(tmp_path: Path) -> None:
    """One epoch at a learning rate far below float32's resolution (sgd, 1e-30) from
    given weights ends bitwise on those weights; from the seed's draw it does not."""
    text = nnc.format(nnc.load("examples/xor.nn"))
    assert "sgd(0.5)" in text
    program = nnc.parse(text.replace("sgd(0.5)", "sgd(1e-30)"))
    weights = {k: v + 1.0 for k, v in init_weights(program, "Xor", seed=7).items()}
    path = tmp_path / "w.safetensors"
    save_weights_file(path, weights)
    trained = nnc.fit(program, weights=path, save=False, epochs=1).runtime.get_weights()
    assert all(np.array_equal(trained[k], weights[k]) for k in weights)
    drawn = nnc.fit(program, save=False, epochs=1).runtime.get_weights()
    assert not any(np.array_equal(drawn[k], weights[k]) for k in weights)
