"""examples/alexnet.nn is the original AlexNet: its parameter count comes from nnc's
shape checker and equals that of the same architecture built independently in
PyTorch (``nn.Conv2d(groups=2)``, ``nn.Linear``), with the groups and without."""

from __future__ import annotations

from pathlib import Path

import nnc
from tests.conftest import EXAMPLES, REDUCED_INPUTS, load_example, require, run_nnc

ALEXNET = EXAMPLES / "alexnet.nn"


def torch_alexnet(groups: int, pooled: int = 6):  # type: ignore[no-untyped-def]
    """Krizhevsky et al. (2012), written directly in PyTorch; ``pooled`` is the side of
    the last pool's output (6 for 227x227 images)."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4),
        nn.ReLU(),
        nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0),
        nn.MaxPool2d(3, stride=2),
        nn.Conv2d(96, 256, 5, padding=2, groups=groups),
        nn.ReLU(),
        nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0),
        nn.MaxPool2d(3, stride=2),
        nn.Conv2d(256, 384, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(384, 384, 3, padding=1, groups=groups),
        nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1, groups=groups),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2),
        nn.Flatten(),
        nn.Linear(256 * pooled * pooled, 4096),
        nn.ReLU(),
        nn.Linear(4096, 4096),
        nn.ReLU(),
        nn.Linear(4096, 1000),
    )


def without_groups() -> nnc.Program:
    return nnc.parse(ALEXNET.read_text().replace(", groups = 2", ""))


def test_parameter_count_with_groups_matches_torch() -> None:
    require("torch")
    program = nnc.load(ALEXNET)
    expected = sum(p.numel() for p in torch_alexnet(groups=2).parameters())
    assert nnc.count_params(program, "AlexNet") == expected == 60_965_224


def test_parameter_count_without_groups_matches_torch() -> None:
    require("torch")
    expected = sum(p.numel() for p in torch_alexnet(groups=1).parameters())
    assert nnc.count_params(without_groups(), "AlexNet") == expected == 62_378_344


def test_parameter_shapes_match_torch_layer_by_layer() -> None:
    """Canonical layouts are PyTorch's, so every weight and bias has torch's shape."""
    require("torch")
    from nnc.ir.passes import model_params

    ours = [tuple(p.spec.shape) for p in model_params(nnc.load(ALEXNET), "AlexNet")]
    theirs = [tuple(p.shape) for p in torch_alexnet(groups=2).parameters()]
    assert ours == theirs


def test_summary_prints_both_counts(tmp_path: Path) -> None:
    grouped = run_nnc("summary", str(ALEXNET))
    assert grouped.returncode == 0, grouped.stderr
    assert "params: 60,965,224 (60,965,224 trainable, 0 frozen)" in grouped.stdout
    assert "[256, 6, 6]" in grouped.stdout  # the 227x227 input pools to 6x6
    plain = tmp_path / "alexnet_plain.nn"
    plain.write_text(ALEXNET.read_text().replace(", groups = 2", ""))
    ungrouped = run_nnc("summary", str(plain))
    assert ungrouped.returncode == 0, ungrouped.stderr
    assert "params: 62,378,344 (62,378,344 trainable, 0 frozen)" in ungrouped.stdout


def test_forward_matches_the_torch_model_at_the_reduced_input() -> None:
    """nnc's NumPy backend (float64) and the hand-written torch model, loaded with the
    same canonical weights, agree at [3, 67, 67]: the groups split the channels the
    same way and nnc's LRN alpha (divided by size) is torch's."""
    require("torch")
    import numpy as np
    import torch

    from nnc.backends import numpy as numpy_backend
    from nnc.ir.weights import init_weights

    program = load_example(ALEXNET)
    weights = init_weights(program, "AlexNet", seed=0)
    net = torch_alexnet(groups=2, pooled=1).eval()
    with torch.no_grad():
        for p, name in zip(net.parameters(), weights, strict=True):
            p.copy_(torch.from_numpy(weights[name]))
    x = np.random.default_rng(0).normal(size=(2, *REDUCED_INPUTS["alexnet"]))
    ours = numpy_backend.build(program, "AlexNet", weights, dtype="float64").forward(x)
    with torch.no_grad():
        theirs = net(torch.from_numpy(x.astype(np.float32))).double().numpy()
    assert np.abs(ours - theirs).max() < 1e-5 * np.abs(ours).max()
