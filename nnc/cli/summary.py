"""``nnc summary FILE [--model NAME] [--json] [--flops]``: layers, shapes, parameters,
memory, and with ``--flops`` the multiply-accumulates of each layer."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nnc.ir.flops import MacCount
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
    p.add_argument(
        "--flops",
        action="store_true",
        help="add the multiply-accumulates (MACs) per sample of each layer and in total "
        "(dense, convolutions and recurrent layers; see nnc.ir.flops)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from nnc.dsl import load
    from nnc.ir.flops import count_macs
    from nnc.ir.summary import summarize

    program = load(args.file)
    names = [program.model(args.model).name] if args.model else list(program.models)
    summaries = [summarize(program, n) for n in names]
    macs = [count_macs(program, n) for n in names] if args.flops else None
    if args.json:
        dicts = [s.to_dict() for s in summaries]
        for d, c in zip(dicts, macs or [], strict=False):
            for row in d["rows"]:
                row["macs"] = c.per_node[row["name"]]
            d["total_macs"] = c.total
        payload = dicts[0] if len(dicts) == 1 else {"models": dicts}
        print(json.dumps(payload, indent=2))
        return 0
    _print_tables(summaries, macs)
    return 0


def _macs_text(n: int | None) -> str:
    if n is None:
        return "symbolic"
    return f"{n:,}" if n else ""


def _print_tables(summaries: list[ModelSummary], macs: list[MacCount] | None) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from nnc.ir.summary import human_bytes

    # Every cell is plain Text: rich would read a shape such as [t, 1] as markup.
    console = Console(markup=False, highlight=False)
    for k, s in enumerate(summaries):
        c = macs[k] if macs is not None else None
        table = Table(title=Text(f"model {s.model}"), title_justify="left", show_footer=True)
        table.add_column("layer", footer="total")
        table.add_column("op")
        table.add_column("output shape")
        table.add_column("params", justify="right", footer=f"{s.total_params:,}")
        if c is not None:
            table.add_column("MACs", justify="right", footer=_macs_text(c.total))
        for name, t in s.inputs:
            table.add_row(Text(name), "input", Text(t), "", *([""] if c else []))
        for r in s.rows:
            params = f"{r.params:,}" if r.params else ""
            extra = [_macs_text(c.per_node[r.name])] if c is not None else []
            table.add_row(Text(r.name), Text(r.op), Text(r.output_shape), params, *extra)
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
        if c is not None:
            total = c.total
            console.print(
                "multiply-accumulates per sample: "
                + (
                    f"{total:,} ({2 * total:,} FLOPs)"
                    if total is not None
                    else "depend on symbolic dims"
                )
            )
