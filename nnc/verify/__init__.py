"""Cross-backend equivalence: the harness behind ``nnc verify`` and the test matrix.

>>> import nnc
>>> report = verify(nnc.load("examples/xor.nn"), backends=["numpy"], steps=3)
>>> report.equivalent
True
"""

from __future__ import annotations

from nnc.verify.gan import verify_gan
from nnc.verify.harness import Report, Row, first_deviating_layer, make_case, run, verify
from nnc.verify.tolerance import Deviation, Tolerance, deviation, tolerance_for

__all__ = [
    "Deviation",
    "Report",
    "Row",
    "Tolerance",
    "deviation",
    "first_deviating_layer",
    "make_case",
    "run",
    "tolerance_for",
    "verify",
    "verify_gan",
]
