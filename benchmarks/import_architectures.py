"""Import of whole vision architectures at 224x224: each is written in torch
(tests/architectures/nets.py), exported by torch.onnx.export (opset 17, eval mode,
batchnorm folded), imported by nnc and run on every backend against onnxruntime on
the original file. One row per architecture: max relative deviation per backend,
one forward's time per backend (batch 1, after a warm-up), import time.

    PYTHONPATH=. python benchmarks/import_architectures.py [name ...]
"""

from __future__ import annotations

import sys
import time

import numpy as np

from tests.architectures.check import BACKENDS, export, import_and_compare
from tests.architectures.nets import ARCHITECTURES, build, folded_parameter_count

SHAPE = (1, 3, 224, 224)


def main(names: list[str]) -> None:
    head = " ".join(f"{b:>10}" for b in BACKENDS)
    print(
        f"{'architecture':<20} {'params':>11} {'import s':>8}  deviation: {head}  seconds: {head}"
    )
    for name in names or list(ARCHITECTURES):
        module = build(name)
        start = time.perf_counter()
        data = export(module, SHAPE, 17)
        exported = time.perf_counter() - start
        x = np.random.default_rng(0).normal(size=SHAPE).astype(np.float32)
        try:
            r = import_and_compare(data, x)
        except Exception as exc:  # a refusal: print it and go on
            print(f"{name:<20} refused: {type(exc).__name__}: {str(exc)[:300]}")
            continue
        assert r.params == folded_parameter_count(module)
        dev = " ".join(f"{r.deviation[b]:>10.1e}" for b in BACKENDS)
        sec = " ".join(f"{r.seconds[b]:>10.3f}" for b in BACKENDS)
        print(
            f"{name:<20} {r.params:>11,} {r.import_s:>8.2f}  deviation: {dev}  seconds: {sec}"
            f"  (export {exported:.1f} s, onnxruntime {r.reference_s:.3f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
