"""Run the equivalence matrix and report the largest deviations per check and backend.

    python scripts/equivalence_report.py [--examples] [--ops] [--coverage] [--optimizers]
                                         [--json OUT.jsonl]

- ``--examples``: every example with its own optimizer, 20 steps (AlexNet at its
  reduced input, 2 steps: the suite's matrix);
- ``--ops``: every registry op from its example, 5 steps (the suite's matrix);
- ``--coverage``: the two coverage models with every optimizer and schedule of
  ``tests/equivalence/matrix.py``, 20 steps (the suite's optimizer matrix);
- ``--optimizers``: every example with every optimizer and schedule, 20 steps (too
  slow for the suite);
- no flag: all of them.

Each case runs on every installed backend against the float64 reference, with the
optimizer state moved between every ordered pair of training backends half-way.
The summary gives, per check and backend, the largest relative deviation seen, where,
and its ratio to the tolerance; ``--json`` writes one line per case and row for
further analysis (used to set the constants of ``nnc/verify/tolerance.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nnc
from nnc.backends import framework_available
from nnc.errors import TrainingError
from nnc.verify import Report, verify
from tests.conftest import EXAMPLE_FILES, load_example
from tests.equivalence.matrix import (
    COVERAGE_MODELS,
    EXAMPLE_STEPS,
    OPTIMIZERS,
    SCHEDULES,
    coverage_program,
    op_program,
)

Case = tuple[str, nnc.Program, str | None, int, Any, Any]


def example_models() -> Iterator[tuple[str, nnc.Program, str | None]]:
    for path in EXAMPLE_FILES:
        program = load_example(path)
        if path.stem == "gan":
            for model in ("Generator", "Discriminator"):
                yield f"gan.{model}", program, model
        else:
            yield path.stem, program, None


def cases(args: argparse.Namespace) -> Iterator[Case]:
    every = not (args.examples or args.ops or args.coverage or args.optimizers)
    if args.examples or every:
        for name, program, model in example_models():
            steps = EXAMPLE_STEPS.get(name, 20)
            yield f"example {name}", program, model, steps, None, None
    if args.ops or every:
        from nnc.ir.ops import OPS

        for op in sorted(o for o in OPS if o != "call"):
            yield f"op {op}", op_program(op), None, 5, None, None
    if args.coverage or every:
        program = coverage_program()
        for model in COVERAGE_MODELS:
            for t in (*OPTIMIZERS, *SCHEDULES):
                yield f"coverage {model} {t.name}", program, model, 20, t.optimizer, t.schedule
    if args.optimizers or every:
        for name, program, model in example_models():
            for t in (*OPTIMIZERS, *SCHEDULES):
                yield f"example {name} {t.name}", program, model, 20, t.optimizer, t.schedule


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("examples", "ops", "coverage", "optimizers"):
        parser.add_argument(f"--{flag}", action="store_true")
    parser.add_argument("--json", type=Path, help="write one JSON line per case and row")
    args = parser.parse_args()

    backends = [b for b in ("numpy", "torch", "tensorflow", "onnx") if framework_available(b)]
    worst: dict[tuple[str, str], tuple[float, float, str]] = {}
    failures: list[str] = []
    out = args.json.open("w") if args.json else None
    start = time.time()
    count = 0
    for label, program, model, steps, optimizer, schedule in cases(args):
        try:
            report = verify(program, model, backends, steps, optimizer=optimizer, schedule=schedule)
        except TrainingError as exc:  # the float64 reference itself overflows
            print(f"diverged {label}: {exc}", flush=True)
            continue
        count += 1
        record(report, label, worst, out)
        if not report.equivalent:
            failures.append(label)
            print(f"FAIL {label}", flush=True)
    if out:
        out.close()
    print(f"\n{count} cases on {', '.join(backends)} in {time.time() - start:.0f} s")
    print(f"{'check':10s} {'backend':22s} {'largest rel':>11s} {'/ tol':>7s}  where")
    for (check, backend), (rel, ratio, where) in sorted(worst.items()):
        print(f"{check:10s} {backend:22s} {rel:11.2e} {ratio:7.3f}  {where}")
    print(f"{len(failures)} failing: {', '.join(failures) or 'none'}")
    return 1 if failures else 0


def record(
    report: Report,
    label: str,
    worst: dict[tuple[str, str], tuple[float, float, str]],
    out: Any,
) -> None:
    """Fold a report into the per-check maxima and write its rows."""
    tol = report.tolerance

    def keep(check: str, backend: str, rel: float, limit: float, where: str) -> None:
        ratio = rel / limit if limit else math.inf
        if (check, backend) not in worst or rel > worst[check, backend][0]:
            worst[check, backend] = (rel, ratio, f"{label}: {where}")
        if (check, "largest / tol") not in worst or ratio > worst[check, "largest / tol"][1]:
            worst[check, "largest / tol"] = (rel, ratio, f"{label}: {backend}: {where}")

    for r in report.rows:
        pair = f"{r.backend} vs {r.against}"
        scale = 1.0 if r.against == "reference" else 2.0
        keep("forward", pair, r.forward.max_rel, scale * tol.forward, r.forward.where)
        if r.gradients is not None:
            keep("gradients", pair, r.gradients.max_rel, scale * tol.gradient, r.gradients.where)
        if r.training is not None:
            keep("training", pair, r.training.max_rel, scale * tol.training, r.training.where)
        if out:
            row = {"case": label, "reduction": tol.reduction, **r.to_dict()}
            out.write(json.dumps(row, default=str) + "\n")
    for t in report.transfers:
        d = t.deviation
        keep("transfer", f"{t.source} -> {t.target}", d.max_rel, tol.training, d.where)
        if out:
            row = {"case": label, "reduction": tol.reduction, "transfer": t.to_dict()}
            out.write(json.dumps(row, default=str) + "\n")


if __name__ == "__main__":
    sys.exit(main())
