"""The full run of examples/seq_reverse.nn (four epochs) on each training backend:
held-out token accuracy (padding left out) and wall time per backend.

    PYTHONPATH=. python benchmarks/seq_reverse.py [numpy torch tensorflow]

tests/convergence/test_convergence.py runs two epochs on numpy and torch.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nnc

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "seq_reverse.nn"


def main(backends: list[str]) -> None:
    program = nnc.load(EXAMPLE)
    for backend in backends:
        start = time.perf_counter()
        result = nnc.fit(program, backend=backend, save=False)
        seconds = time.perf_counter() - start
        accuracy = [round(epoch["val_accuracy"], 4) for epoch in result.history]
        print(f"{backend}: val_accuracy per epoch {accuracy}, {seconds:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:] or ["numpy", "torch", "tensorflow"])
