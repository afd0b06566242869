"""examples/alexnet.nn forward at its full 227x227 input on every backend, against
nnc's NumPy backend in float64 (the reference of the equivalence matrix).

The suite runs AlexNet at [3, 67, 67] (tests/equivalence/test_examples.py); this is
the full-size check the suite cannot afford. Every backend gets the same canonical
weights (drawn from the recipe's seed) and the same standard-normal batch, in
evaluation mode (dropout is the identity). For each backend it prints the time of
one forward pass (after a warm-up) and the largest deviation from the reference,
absolute and relative to the reference's largest output.

    python benchmarks/bench_alexnet.py [--batch 2] [--backends numpy,torch,tensorflow,onnx]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BACKENDS = "numpy,torch,tensorflow,onnx"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--backends", default=BACKENDS)
    args = parser.parse_args()

    import nnc
    from nnc.backends.registry import parse_backend
    from nnc.ir.weights import init_weights

    program = nnc.load(ROOT / "examples" / "alexnet.nn")
    print(f"AlexNet: {nnc.count_params(program, 'AlexNet'):,} parameters")
    weights = init_weights(program, "AlexNet", seed=0)
    x = np.random.default_rng(0).normal(size=(args.batch, 3, 227, 227)).astype(np.float32)

    numpy_backend = parse_backend("numpy").load()
    start = time.perf_counter()
    reference = np.asarray(
        numpy_backend.build(program, "AlexNet", weights, dtype="float64").forward(x)
    )
    print(f"reference (numpy, float64): {time.perf_counter() - start:.2f} s")
    scale = float(np.abs(reference).max())
    print(f"{'backend':<12}{'forward s':>10}{'max |diff|':>14}{'relative':>12}")
    for name in args.backends.split(","):
        runtime = parse_backend(name).load().build(program, "AlexNet", weights)
        runtime.forward(x[:1])  # warm-up: tracing, graph building, first-call caches
        start = time.perf_counter()
        got = np.asarray(runtime.forward(x), dtype=np.float64)
        seconds = time.perf_counter() - start
        worst = float(np.abs(got - reference).max())
        print(f"{name:<12}{seconds:>10.2f}{worst:>14.3e}{worst / scale:>12.3e}")


if __name__ == "__main__":
    main()
