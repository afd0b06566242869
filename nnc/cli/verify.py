"""``nnc verify FILE``: run a model through every installed backend and compare."""

from __future__ import annotations

import argparse
import json
import math
from typing import TYPE_CHECKING, Any

from nnc.cli.options import backend_type
from nnc.cli.train import positive_int, seed_int

if TYPE_CHECKING:
    from rich.console import Console

    from nnc.ir.program import Program
    from nnc.verify import Deviation, Report


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="check that every installed backend computes the same numbers",
        description="Run the model on every installed backend from the same seed and the same "
        "batches, and compare forward outputs, gradients, and parameters and optimizer state "
        "after K training steps with a float64 NumPy reference (dropout disabled). Then move "
        "the optimizer state half-way between every pair of training backends and check that "
        "training carries on the same. A GAN recipe (without --model) trains both models: K "
        "rounds of a discriminator and a generator step on the same batches and noise. A "
        "contrastive divergence recipe runs K CD steps of every rbm layer on the same "
        "batches and uniforms (numpy, torch, tensorflow). "
        "Exit 0 when equivalent, 1 otherwise.",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--model", metavar="NAME", help="model to verify (default: the trained one)")
    p.add_argument(
        "--backends",
        nargs="+",
        type=backend_type(),
        metavar="B",
        help="backends to compare (default: all installed)",
    )
    p.add_argument(
        "--steps", type=positive_int, default=20, metavar="K", help="training steps (20)"
    )
    p.add_argument("--seed", type=seed_int, default=0, help="seed of weights and batches (0)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from nnc.backends.gancode import default_gan
    from nnc.dsl import parse, read_spec
    from nnc.verify import verify, verify_gan
    from nnc.verify.cd import default_cd, verify_cd

    text = read_spec(args.file)
    program = parse(text, args.file)
    gan = default_gan(program, args.model)
    cd = default_cd(program, args.model)
    _check_memory(program, text, args, gan, cd)
    if gan is not None:  # both models, trained against each other
        report = verify_gan(program, gan, args.backends, steps=args.steps, seed=args.seed)
    elif cd is not None:  # an rbm (stack) trained by contrastive divergence
        report = verify_cd(program, cd, args.backends, steps=args.steps, seed=args.seed)
    else:
        report = verify(program, args.model, args.backends, steps=args.steps, seed=args.seed)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=_jsonable))
    else:
        _print(report, cd is not None and gan is None)
    return 0 if report.equivalent else 1


def _check_memory(program: Program, text: str, args: argparse.Namespace, gan: Any, cd: Any) -> None:
    """Refuse, at the largest layer, what would not fit the memory budget while
    verified: the peak is many copies of the parameters (:mod:`nnc.verify.budget`)."""
    from nnc.backends import registry
    from nnc.errors import NncError
    from nnc.verify.budget import check_verify_memory

    if gan is not None:
        models = [gan.generator, gan.discriminator]
    elif cd is not None:
        models = [cd.model]
    else:
        models = [comparable_model(program, args.model)]
    specs = (
        [registry.parse_backend(b) for b in args.backends]
        if args.backends
        else registry.backends(installed=True)
    )
    try:
        check_verify_memory(program, models, [(spec.name, spec.trains) for spec in specs])
    except NncError as err:
        raise err.with_source(text) from None


def comparable_model(program: Program, model: str | None) -> str:
    """The model ``nnc verify`` compares: the one named, the first trained by a
    supervised recipe, or the first (as :func:`nnc.verify.harness.comparable`)."""
    from nnc.ir.training import Recipe

    return model or next(
        (r.model for r in program.recipes.values() if isinstance(r, Recipe)),
        next(iter(program.models)),
    )


def _jsonable(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _cell(d: Deviation | None, tol: float) -> str:
    if d is None:
        return "-"
    mark = "" if d.max_rel <= tol else " ✗"
    return f"{d.max_rel:.1e}{mark}"


def _print(report: Report, cd: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    tol = report.tolerance
    console = Console(highlight=False)
    table = Table(
        title=f"model {report.model}: {report.steps} training steps, batch 8",
        title_justify="left",
    )
    first = "recon errors" if cd else "forward"
    columns = ("backend", "against", first, "gradients", f"after {report.steps} steps")
    for column in (*columns, "verdict"):
        table.add_column(column, justify="left" if column in ("backend", "against") else "right")
    for r in report.rows:
        scale = 1.0 if r.against == "reference" else 2.0
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
        "max relative deviation per check (the parameters' and optimizer state's after "
        + (
            "training, with the velocities and every step's chain; recon errors: every "
            "step's, against the forward tolerance"
            if cd
            else "training"
        )
        + "); reference = NumPy in float64. Tolerances "
        f"({tol.describe()}); pairs of float32 backends are allowed twice as much."
    )
    _print_transfers(console, report)
    for r in report.rows:
        for line in r.diagnosis:
            console.print(f"{r.backend}: {line}", style="red", markup=False)
        for check, d in (
            ("forward", r.forward),
            ("gradients", r.gradients),
            ("training", r.training),
        ):
            if d is not None and not r.passed and d.where:
                console.print(
                    f"{r.backend} vs {r.against}: worst {check} deviation in {d.where} "
                    f"(max abs {d.max_abs:.3g})",
                    markup=False,
                )
    for note in report.notes:
        console.print(f"note: {note}", markup=False)
    verdict = "equivalent" if report.equivalent else "NOT equivalent"
    console.print(f"verdict: {verdict}")


def _print_transfers(console: Console, report: Report) -> None:
    """The state transfers as a matrix: a row per source, a column per target."""
    from rich.table import Table

    if not report.transfers:
        return
    half = report.steps // 2
    names = list(dict.fromkeys(t.source for t in report.transfers))
    table = Table(
        title=f"optimizer state moved after {half} steps, {report.steps - half} more on the "
        "target: deviation from the uninterrupted reference",
        title_justify="left",
    )
    table.add_column("from \\ to", justify="left")
    for name in names:
        table.add_column(name, justify="right")
    cells = {(t.source, t.target): t for t in report.transfers}
    for source in names:
        row = [source]
        for target in names:
            t = cells.get((source, target))
            row.append("-" if t is None else _cell(t.deviation, report.tolerance.training))
        table.add_row(*row)
    console.print(table)
    slots = sorted({s for t in report.transfers for s in t.slots})
    console.print(f"state moved: {', '.join(slots)}", markup=False)
    for t in report.transfers:
        for line in t.diagnosis:
            console.print(f"{t.source} -> {t.target}: {line}", markup=False)
