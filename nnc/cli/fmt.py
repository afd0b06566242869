"""``nnc fmt FILE... [--check]``: rewrite specs in the canonical layout."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nnc.errors import NncError, visible


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fmt",
        help="format .nn files canonically (comments kept)",
        description="Rewrite each file in nnc's canonical layout, keeping comments and "
        "blocks. Use - to read standard input and write standard output.",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument(
        "--check",
        action="store_true",
        help="change nothing; exit 1 and list the files that would be reformatted",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from nnc.dsl import format_source

    status = 0
    for name in args.files:
        if name == "-":
            sys.stdout.write(format_source(sys.stdin.read(), "<stdin>"))
            continue
        path = Path(name)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise NncError(f"cannot read {path}: {exc.strerror}") from None
        formatted = format_source(text, str(path))
        if formatted == text:
            continue
        if args.check:
            print(f"would reformat {visible(str(path))}")
            status = 1
        else:
            path.write_text(formatted, encoding="utf-8")
            print(f"reformatted {visible(str(path))}")
    return status
