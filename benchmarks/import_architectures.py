"""Import of whole vision architectures at 224x224: each is written in torch
(tests/architectures/nets.py), exported by torch.onnx.export (opset 17, eval mode,
batchnorm folded), imported by nnc and run on every backend against onnxruntime on
the original file. One row per architecture: max relative deviation per backend,
one forward's time per backend (batch 1, after a warm-up), import time.

    PYTHONPATH=. python benchmarks/import_architectures.py [name ...]

With ``--blocks``: the suite's reduced nets (tests/architectures, 2x3x32x32),
exported at opset 17 in eval mode and with batchnorm kept, each imported spec
written with its repeated units as blocks: lines flat -> with blocks, each block's
calls, the parameter count against torch's, and every backend's deviation from
onnxruntime on the spec with blocks (whose numpy outputs must be the flat spec's
bit for bit).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from tests.architectures.check import BACKENDS, export, import_and_compare
from tests.architectures.nets import (
    ARCHITECTURES,
    build,
    folded_parameter_count,
    parameter_count,
)

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


def blocks(names: list[str]) -> None:
    import torch

    from tests.architectures.test_import_architectures import SUITE

    torch.set_num_threads(1)
    shape = (2, 3, 32, 32)
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    for name in names or list(SUITE):
        for mode, training in (("eval", None), ("batchnorm", torch.onnx.TrainingMode.PRESERVE)):
            module = build(name, **SUITE[name])
            data = export(module, shape, 17, training)
            r = import_and_compare(data, x, warm_up=False, blocks=True)
            want = folded_parameter_count(module) if training is None else parameter_count(module)
            calls = ", ".join(f"{b} x{n}" for b, n in r.blocks.items()) or "none"
            dev = " ".join(f"{b} {r.deviation[b]:.1e}" for b in BACKENDS)
            print(
                f"{name:<20} {mode:<9} lines {r.lines[0]:>3} -> {r.lines[1]:>3}  "
                f"params {r.params:,} (torch {want:,}{'' if r.params == want else ' DIFFERS'})  "
                f"deviation: {dev}  blocks: {calls}",
                flush=True,
            )


if __name__ == "__main__":
    if "--blocks" in sys.argv[1:]:
        blocks([a for a in sys.argv[1:] if a != "--blocks"])
    else:
        main(sys.argv[1:])
