"""Cross-backend equivalence: the harness behind ``nnc verify`` and the test matrix.

>>> import nnc
>>> report = verify(nnc.load("examples/xor.nn"), backends=["numpy"], steps=4)
>>> report.equivalent, [(t.source, t.target) for t in report.transfers]
(True, [('reference', 'numpy'), ('numpy', 'reference')])
"""

from __future__ import annotations

from nnc.verify.compare import Noise
from nnc.verify.gan import verify_gan
from nnc.verify.harness import (
    Case,
    Report,
    Row,
    Run,
    Transfer,
    comparable,
    make_case,
    run,
    verify,
)
from nnc.verify.locate import describe, first_deviating_backward, first_deviating_layer
from nnc.verify.tolerance import Deviation, Tolerance, deviation, tolerance_for

__all__ = [
    "Case",
    "Deviation",
    "Noise",
    "Report",
    "Row",
    "Run",
    "Tolerance",
    "Transfer",
    "comparable",
    "describe",
    "deviation",
    "first_deviating_backward",
    "first_deviating_layer",
    "make_case",
    "run",
    "tolerance_for",
    "verify",
    "verify_gan",
]
