"""``nnc verify FILE``: run a model through every installed backend and compare."""

from __future__ import annotations

import argparse
import json
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nnc.verify import Deviation, Report


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="check that every installed backend computes the same numbers",
        description="Run the model on every installed backend from the same seed and the same "
        "batches, and compare forward outputs, gradients, and parameters after K training steps "
        "with a float64 NumPy reference (dropout disabled). A GAN recipe (without --model) "
        "trains both models: K rounds of a discriminator and a generator step on the same "
        "batches and noise. Exit 0 when equivalent, 1 otherwise.",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--model", metavar="NAME", help="model to verify (default: the trained one)")
    p.add_argument(
        "--backends", nargs="+", metavar="B", help="backends to compare (default: all installed)"
    )
    p.add_argument("--steps", type=int, default=20, metavar="K", help="training steps (20)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights and batches (0)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from nnc.backends.gancode import default_gan
    from nnc.dsl import load
    from nnc.errors import NncError
    from nnc.verify import verify, verify_gan

    if args.steps < 1:
        raise NncError(f"--steps must be at least 1. Received: {args.steps}")
    program = load(args.file)
    gan = default_gan(program, args.model)
    if gan is not None:  # both models, trained against each other
        report = verify_gan(program, gan, args.backends, steps=args.steps, seed=args.seed)
    else:
        report = verify(program, args.model, args.backends, steps=args.steps, seed=args.seed)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=_jsonable))
    else:
        _print(report)
    return 0 if report.equivalent else 1


def _jsonable(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _cell(d: Deviation | None, tol: float) -> str:
    if d is None:
        return "-"
    mark = "" if d.max_rel <= tol else " ✗"
    return f"{d.max_rel:.1e}{mark}"


def _print(report: Report) -> None:
    from rich.console import Console
    from rich.table import Table

    tol = report.tolerance
    console = Console()
    table = Table(
        title=f"model {report.model}: {report.steps} training steps, batch 8",
        title_justify="left",
    )
    for column in (
        "backend",
        "against",
        "forward",
        "gradients",
        f"after {report.steps} steps",
        "verdict",
    ):
        table.add_column(column, justify="left" if column in ("backend", "against") else "right")
    for r in report.rows:
        pair = r.against != "reference"
        scale = 2.0 if pair else 1.0
        table.add_row(
            r.backend,
            r.against,
            _cell(r.forward, scale * tol.forward),
            _cell(r.gradients, scale * tol.gradient),
            _cell(r.training, scale * tol.training),
            "[green]pass[/green]" if r.passed else "[red]FAIL[/red]",
        )
    console.print(table)
    console.print(
        "max relative deviation per check; reference = NumPy in float64. "
        f"Tolerances ({tol.describe()}); pairs of float32 backends are allowed twice as much."
    )
    for r in report.rows:
        if r.first_bad_layer:
            console.print(f"[red]{r.backend}: first deviating layer: {r.first_bad_layer}[/red]")
        for check, d in (
            ("forward", r.forward),
            ("gradients", r.gradients),
            ("training", r.training),
        ):
            if d is not None and not r.passed and d.where:
                console.print(
                    f"{r.backend} vs {r.against}: worst {check} deviation in {d.where} "
                    f"(max abs {d.max_abs:.3g})"
                )
    for note in report.notes:
        console.print(f"note: {note}")
    verdict = "equivalent" if report.equivalent else "NOT equivalent"
    console.print(f"verdict: {verdict}")
