"""Shared pieces of the equivalence matrix: which backends, which programs, which
optimizers, and the failure message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nnc
from nnc.ir.ops import OPS
from nnc.ir.training import (
    Adagrad,
    Adam,
    ExponentialLr,
    Rmsprop,
    Sgd,
    StepLr,
)
from nnc.verify import Report
from tests.conftest import require

# Backends that train, and the ones that only run inference (compared on forward).
TRAINING = ["numpy", "torch", "tensorflow"]
INFERENCE = ["onnx"]
FRAMEWORK = {"numpy": "numpy", "torch": "torch", "tensorflow": "tensorflow", "onnx": "onnxruntime"}


# Training steps per example (20 unless listed). AlexNet (24 M parameters at its
# reduced input, tests/conftest.py) takes 2, one on each side of the optimizer-state
# transfer at the midpoint.
EXAMPLE_STEPS = {"alexnet": 2}


def need(backend: str) -> None:
    require(FRAMEWORK[backend])


def op_program(op: str) -> nnc.Program:
    """A one-op model from the op's registry example (mse loss, plain sgd)."""
    body = OPS[op].example.format(op=op)
    return nnc.parse(f"model T {{\n    {body}\n}}\n", f"<{op} example>")


# Two models that together hold every kind of parameter: the optimizer matrix runs on
# them (every example with every optimizer costs too much TensorFlow tracing for the
# suite; scripts/equivalence_report.py --optimizers runs that). Hyper-parameters are
# off their defaults so that a backend ignoring one is caught.
COVERAGE_SOURCE = """
# conv2d, batchnorm (running statistics included), prelu, conv2d_transpose, conv1d,
# a frozen dense layer, layernorm and dense, with a concat and an add.
model Vision {
    input image: [2, 6, 6]
    a = image |> conv2d(4, 3, stride = 2, padding = same) |> batchnorm(momentum = 0.2) |> prelu
    b = a |> conv2d_transpose(2, 3, stride = 2, padding = same) |> tanh
    c = concat(image, b) |> avgpool(2) |> reshape([4, 9])
    d = c |> conv1d(4, 3, padding = same) |> elu
    e = (c + d) |> flatten |> dense(12, trainable = false) |> layernorm |> gelu
    output e |> dense(3)
}

train Vision {
    data      "synthetic.npz"
    loss      cross_entropy
    l2        0.001
}

# embedding, rnn, gru, lstm and dense.
model Sequence {
    input tokens: int64[5]
    embedding(7, 4)
    rnn(5, return_sequences = true)
    gru(5, return_sequences = true)
    lstm(4)
    dense(2)
}

train Sequence {
    data      "synthetic.npz"
    loss      mse
}
"""
COVERAGE_MODELS = ("Vision", "Sequence")


def coverage_program() -> nnc.Program:
    return nnc.parse(COVERAGE_SOURCE, "<coverage models>")


@dataclass(frozen=True)
class Training:
    """An optimizer with a learning-rate schedule, as the matrix runs them."""

    name: str
    optimizer: Any
    schedule: Any = None  # the recipe's (constant)


OPTIMIZERS = [
    Training("sgd", Sgd(lr=0.05)),
    Training("momentum", Sgd(lr=0.05, momentum=0.8)),
    Training("nesterov", Sgd(lr=0.05, momentum=0.8, nesterov=True)),
    Training("adagrad", Adagrad(lr=0.05, eps=1e-4, initial_accumulator=0.1)),
    Training("rmsprop", Rmsprop(lr=0.005, rho=0.8, eps=1e-4)),
    Training("adam", Adam(lr=0.005, beta1=0.8, beta2=0.99, eps=1e-4)),
]
# The harness advances one epoch every two steps: 20 steps are 10 epochs.
SCHEDULES = [
    Training("momentum+step", Sgd(lr=0.05, momentum=0.8), StepLr(every=3, gamma=0.5)),
    Training("adam+exponential", Adam(lr=0.005), ExponentialLr(gamma=0.8)),
]
STATEFUL = [t for t in OPTIMIZERS if t.name != "sgd"]


def explain(report: Report) -> str:
    """The failure message: every row with its worst tensor and diagnosis, and every
    failing state transfer."""
    lines = [f"model {report.model}, tolerance: {report.tolerance.describe()}"]
    for r in report.rows:
        lines.append(
            f"{r.backend} vs {r.against}: {'pass' if r.passed else 'FAIL'}; "
            f"forward {r.forward.max_rel:.2e} ({r.forward.where})"
            + (
                f", gradients {r.gradients.max_rel:.2e} ({r.gradients.where})"
                if r.gradients
                else ""
            )
            + (f", training {r.training.max_rel:.2e} ({r.training.where})" if r.training else "")
        )
        lines += [f"    {line}" for line in r.diagnosis]
    for t in report.transfers:
        if not t.passed:
            lines.append(
                f"state {t.source} -> {t.target}: FAIL {t.deviation.max_rel:.2e} "
                f"({t.deviation.where}) {'; '.join(t.diagnosis)}"
            )
    lines += [f"note: {n}" for n in report.notes]
    return "\n".join(lines)
