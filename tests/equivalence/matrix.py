"""Shared pieces of the equivalence matrix: which backends, which programs."""

from __future__ import annotations

import nnc
from nnc.ir.ops import OPS
from nnc.verify import Report
from tests.conftest import require

# Backends that train, and the ones that only run inference (compared on forward).
TRAINING = ["numpy", "torch", "tensorflow"]
INFERENCE = ["onnx"]
FRAMEWORK = {"numpy": "numpy", "torch": "torch", "tensorflow": "tensorflow", "onnx": "onnxruntime"}


def need(backend: str) -> None:
    require(FRAMEWORK[backend])


def op_program(op: str) -> nnc.Program:
    """A one-op model from the op's registry example (mse loss, plain sgd)."""
    body = OPS[op].example.format(op=op)
    return nnc.parse(f"model T {{\n    {body}\n}}\n", f"<{op} example>")


def explain(report: Report) -> str:
    """The failure message: every row with its worst tensor, and the first bad layer."""
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
            + (f"; first deviating layer: {r.first_bad_layer}" if r.first_bad_layer else "")
        )
    lines += [f"note: {n}" for n in report.notes]
    return "\n".join(lines)
