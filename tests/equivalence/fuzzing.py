"""One differential fuzzing case: a generated program through ``nnc check``, every
backend's ``emit``, and :func:`nnc.verify.verify` on every installed backend.

Shared by ``test_fuzz.py`` and ``scripts/fuzz_equivalence.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import nnc
from nnc.backends import framework_available, get_backend
from nnc.errors import TrainingError
from nnc.verify import Report, verify
from tests.equivalence.matrix import explain

BACKENDS = ("numpy", "torch", "tensorflow", "onnx")


@dataclass
class Outcome:
    """``ok``, ``diverged`` (the float64 reference overflows: nothing to compare) or
    ``mismatch`` (a backend deviates; ``message`` says where)."""

    status: str
    message: str = ""
    report: Report | None = None


def differential(source: str, steps: int = 6) -> Outcome:
    """Check, emit on every backend, then compare every installed backend."""
    program = nnc.parse(source, "<fuzz>")  # must pass nnc check: raises otherwise
    for backend in BACKENDS:
        artefact = get_backend(backend).emit(program, source="<fuzz>")
        assert artefact, f"{backend} emitted nothing"
    installed = [b for b in BACKENDS if framework_available(b)]
    try:
        # A program whose training overflows is "diverged", found by the finiteness
        # checks; NumPy's overflow warnings on the way say nothing more.
        with np.errstate(all="ignore"):
            report = verify(program, backends=installed, steps=steps)
    except TrainingError as exc:
        return Outcome("diverged", str(exc))
    if report.equivalent:
        return Outcome("ok", report=report)
    return Outcome("mismatch", explain(report), report)
