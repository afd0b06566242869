"""``nnc ir FILE [--json]``: show the checked IR."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ir",
        help="print the checked IR (as .nn text, or --json)",
        description="Print the checked IR: blocks expanded, every node named, every recipe "
        "setting written out (defaults included). With --json, the IR as JSON "
        "(nnc.loads_json reads it back identically).",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from nnc.dsl import format_program, load

    program = load(args.file)
    print(
        program.to_json() if args.json else format_program(program, resolved=True),
        end="\n" if args.json else "",
    )
    return 0
