"""``nnc eval FILE --weights W``: the loss and metrics of trained weights."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nnc.cli.options import add_backend_argument, add_device_argument
from nnc.cli.train import seed_int, spec_source


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="loss and metrics of trained weights",
        description="Evaluate trained weights on a recipe's data: the loss, the recipe's "
        "metrics, and for classifiers the accuracy and confusion matrix. W may be a weights "
        "file, a checkpoint or a run folder (which also supplies the run's standardisation "
        "statistics and seed).",
    )
    p.add_argument("file", metavar="FILE", help="the .nn file")
    p.add_argument(
        "--weights",
        "-w",
        required=True,
        metavar="W",
        help="weights file (.safetensors, or an older .npz), checkpoint or run folder",
    )
    p.add_argument(
        "--data",
        metavar="DATA",
        help="validation (default when the recipe has a validation set), train, all, a "
        "built-in data set's name, or a .csv/.npz file",
    )
    p.add_argument("--recipe", metavar="NAME", help="the train recipe (default: the only one)")
    add_backend_argument(p)
    p.add_argument(
        "--seed", type=seed_int, metavar="N", help="the seed of generated data (default: the run's)"
    )
    add_device_argument(p)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from nnc.dsl import load
    from nnc.train.inference import evaluate_trained, load_trained
    from nnc.train.progress import format_value, print_confusion
    from nnc.train.recipes import resolve_recipe, select_recipe

    def warn(message: str) -> None:
        print(f"warning: {message}", file=sys.stderr)

    with spec_source(args.file):
        program = load(args.file)
        base = Path(args.file).resolve().parent
        trained = load_trained(args.weights, warn)
        seed = args.seed if args.seed is not None else trained.seed
        recipe = resolve_recipe(
            select_recipe(program, args.recipe, args.file), seed=seed, base=base
        )
        report = evaluate_trained(
            program,
            recipe,
            trained,
            data=args.data,
            backend=args.backend,
            device=args.device,
            base=base,
        )
        if args.json:
            out = {"data": report.data, "samples": report.samples, **report.figures}
            if report.confusion is not None:
                out["confusion_matrix"] = report.confusion.tolist()
            print(json.dumps(out, indent=2))
            return 0
        console = Console(highlight=False)
        console.print(f"{recipe.model} on the {report.data} ({report.samples:,} samples)")
        table = Table()
        table.add_column("figure")
        table.add_column("value", justify="right")
        for name, value in report.figures.items():
            table.add_row(name, format_value(name, value))
        console.print(table)
        if report.confusion is not None:
            print_confusion(console, report.confusion, report.data)
        return 0
