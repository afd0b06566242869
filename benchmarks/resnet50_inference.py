"""ResNet-50 inference, batch 8 at 224x224: every nnc backend beside onnxruntime on
the original file and plain eager PyTorch, in one run, on the same thread count.

The network is written in torch (tests/architectures/nets.py; 25,557,032 parameters,
random initialisation), exported by torch.onnx.export (opset 17, eval mode: the
exporter folds each batchnorm into its convolution) and imported by nnc. Plain torch
runs the module itself (``torch.no_grad``, batchnorm not folded) on the same input.
Each engine is warmed up once, then the engines take turns (one batch each, round
robin, ``--reps`` rounds), so that a load that comes and goes on the machine falls on
all of them alike. The table gives the best and the median milliseconds per batch
and the speed relative to plain torch (its best time over the engine's: 1.0 is as
fast, 0.5 half as fast), beside the targets of issue 20; and the same from the CPU
seconds of the process (``time.process_time``), which on a loaded machine does not
count the time spent waiting for a core: with ``--threads 1`` the steadier figure.

    PYTHONPATH=. python benchmarks/resnet50_inference.py [--threads 2] [--reps 5]
        [--profile numpy|torch|tensorflow]

Measured 2026-12-07 on a two-core machine shared with other jobs (load about 14, so
the wall times are several times what an idle machine gives), ``--threads 1 --reps 3``:

    engine             best ms  median ms  x plain torch    cpu ms  x (cpu)   target
    plain torch         2619.0     2783.4           1.00    1091.1     1.00
    onnxruntime         1844.9     1914.2           1.42     741.4     1.47
    nnc numpy           7297.1     8886.2           0.36    3332.2     0.33   >= 0.3
    nnc torch           2987.6     3103.5           0.88    1163.1     0.94  >= 0.95
    nnc tensorflow      2408.1     2536.8           1.09     962.4     1.13   >= 0.8
    nnc onnx            1904.0     1967.8           1.38     738.1     1.48

and ``--threads 2 --reps 3`` (load about 15): plain torch 16,035 ms, onnxruntime
5,196, nnc numpy 26,536 (0.60x), nnc torch 15,314 (1.05x), nnc tensorflow 5,754
(2.79x), nnc onnx 5,318. The torch backend's generated module calls the same
kernels as plain torch: torch.profiler on one batch gives 2.90 s (plain) against
2.94 s (nnc), the same 20 mkldnn and 33 slow (1x1) convolutions; nnc's convolutions
carry the folded batchnorm as a bias (35 bias copies, 0.10 s) where plain torch runs
53 batchnorms (0.11 s). Below 0.95x is the machine's noise. The NumPy backend
(``--profile numpy``): of 9.2 s, the convolutions' matrix products 4.3 s, im2col's
patch copies 2.7 s (for 1x1 convolutions a copy of the input that a plain matrix
product would not need), the elementwise adds and relus 1.5 s, max pooling 0.35 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# The thread count is fixed before numpy (BLAS) or a framework loads.
_threads = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--threads=")), None)
if _threads is None and "--threads" in sys.argv:
    _threads = sys.argv[sys.argv.index("--threads") + 1]
THREADS = int(_threads or 2)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(THREADS)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

SHAPE = (8, 3, 224, 224)
TARGETS = {"torch": 0.95, "tensorflow": 0.8, "numpy": 0.3}
BACKENDS = ("numpy", "torch", "tensorflow", "onnx")


def engines(threads: int) -> tuple[dict[str, object], np.ndarray, float]:
    """name -> a function of the batch; the batch; seconds the import took."""
    import tensorflow as tf
    import torch

    torch.set_num_threads(threads)
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    from nnc.backends import get_backend
    from nnc.backends import onnx as onnx_backend
    from nnc.backends.onnx.runtime import open_session, run_session
    from tests.architectures.check import export
    from tests.architectures.nets import build

    module = build("resnet50")
    data = export(module, SHAPE, 17)
    start = time.perf_counter()
    imported = onnx_backend.import_model(data)
    import_s = time.perf_counter() - start
    x = np.random.default_rng(0).normal(size=SHAPE).astype(np.float32)

    def plain_torch(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(batch)).numpy()

    session = open_session(data, threads=threads)
    found: dict[str, object] = {
        "plain torch": plain_torch,
        "onnxruntime": lambda batch: run_session(session, {"x": batch})[0],
    }
    for name in BACKENDS:
        options = {"threads": threads} if name == "onnx" else {}
        runtime = get_backend(name).build(
            imported.program, imported.model, imported.weights, **options
        )
        found[f"nnc {name}"] = runtime.forward
    return found, x, import_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--profile", choices=("numpy", "torch", "tensorflow"))
    args = ap.parse_args()

    run, x, import_s = engines(args.threads)
    print(
        f"ResNet-50, batch {SHAPE[0]}, {SHAPE[2]}x{SHAPE[3]}, {args.threads} thread(s), "
        f"best and median of {args.reps}; import {import_s:.1f} s"
    )
    reference = np.asarray(run["onnxruntime"](x), dtype=np.float64)  # type: ignore[operator]
    deviation = {}
    for name, fn in run.items():  # the warm-up, which also checks the outputs
        got = np.asarray(fn(x), dtype=np.float64)  # type: ignore[operator]
        deviation[name] = float(np.abs(got - reference).max() / np.abs(reference).max())
    times: dict[str, list[float]] = {name: [] for name in run}
    cpu: dict[str, list[float]] = {name: [] for name in run}
    for _ in range(args.reps):
        for name, fn in run.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn(x)  # type: ignore[operator]
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    plain, plain_cpu = min(times["plain torch"]), min(cpu["plain torch"])
    print(f"{'engine':<16} {'best ms':>9} {'median ms':>10} {'x plain torch':>14} "
          f"{'cpu ms':>9} {'x (cpu)':>8} {'target':>8} {'deviation':>10}")  # fmt: skip
    for name, seconds in times.items():
        backend = name.removeprefix("nnc ")
        target = f">= {TARGETS[backend]}" if name.startswith("nnc ") and backend in TARGETS else ""
        print(
            f"{name:<16} {min(seconds) * 1e3:>9.1f} {np.median(seconds) * 1e3:>10.1f} "
            f"{plain / min(seconds):>14.2f} {min(cpu[name]) * 1e3:>9.1f} "
            f"{plain_cpu / min(cpu[name]):>8.2f} {target:>8} {deviation[name]:>10.1e}"
        )
    if args.profile:
        profile(run[f"nnc {args.profile}"], x, args.profile)


def profile(fn: object, x: np.ndarray, backend: str) -> None:
    """Where one batch's time goes: the 15 costliest functions (cProfile)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    fn(x)  # type: ignore[operator]
    profiler.disable()
    print(f"\nprofile of nnc {backend}, one batch (own time, top 15):")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
