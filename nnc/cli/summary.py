"""``nnc summary FILE [--model NAME] [--json]``: layers, shapes, parameters, memory."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nnc.ir.summary import ModelSummary


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "summary",
        help="table of layers, output shapes and parameter counts",
        description="Print each layer with its output shape and parameter count, the totals, "
        "the parameter memory and the activation memory per sample (float32).",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--model", metavar="NAME", help="model to summarise (default: all)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from nnc.dsl import load
    from nnc.ir.summary import summarize

    program = load(args.file)
    names = [program.model(args.model).name] if args.model else list(program.models)
    summaries = [summarize(program, n) for n in names]
    if args.json:
        payload = (
            summaries[0].to_dict()
            if len(summaries) == 1
            else {"models": [s.to_dict() for s in summaries]}
        )
        print(json.dumps(payload, indent=2))
        return 0
    _print_tables(summaries)
    return 0


def _print_tables(summaries: list[ModelSummary]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from nnc.ir.summary import human_bytes

    # Every cell is plain Text: rich would read a shape such as [t, 1] as markup.
    console = Console(markup=False, highlight=False)
    for s in summaries:
        table = Table(title=Text(f"model {s.model}"), title_justify="left", show_footer=True)
        table.add_column("layer", footer="total")
        table.add_column("op")
        table.add_column("output shape")
        table.add_column("params", justify="right", footer=f"{s.total_params:,}")
        for name, t in s.inputs:
            table.add_row(Text(name), "input", Text(t), "")
        for r in s.rows:
            params = f"{r.params:,}" if r.params else ""
            table.add_row(Text(r.name), Text(r.op), Text(r.output_shape), params)
        console.print(table)
        act = s.activation_bytes_per_sample
        console.print(
            f"params: {s.total_params:,} ({s.trainable_params:,} trainable, "
            f"{s.non_trainable_params:,} frozen)"
            + (f", plus {s.buffer_values:,} buffer values" if s.buffer_values else "")
            + f"\nparameter memory: {human_bytes(s.param_bytes)}"
            + "\nactivation memory per sample: "
            + (human_bytes(act) if act is not None else "depends on symbolic dims")
        )
