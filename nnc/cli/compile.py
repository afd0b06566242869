"""``nnc compile FILE --backend B [-o OUT] [--model NAME]``: emit backend code."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nnc.cli.options import add_backend_argument
from nnc.errors import NncError, visible


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compile",
        help="generate NumPy, PyTorch or TensorFlow code, or an ONNX model",
        description="Lower a checked model to a backend. Python backends print a standalone "
        "module (or write it with -o); onnx writes a .onnx file and needs -o. No framework "
        "is imported to generate code.",
    )
    p.add_argument("file", metavar="FILE")
    add_backend_argument(p, what="the code is for")
    p.add_argument("--model", metavar="NAME", help="model to compile (default: the trained one)")
    p.add_argument("-o", "--output", metavar="OUT", help="output file (default: stdout)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from nnc.backends.registry import parse_backend
    from nnc.dsl import load

    name = args.backend
    program = load(args.file)
    artefact = parse_backend(name).emit(program, args.model, source=args.file)
    if isinstance(artefact, bytes):
        if not args.output:
            raise NncError(f"the {name} backend writes a binary file; give one with -o OUT")
        Path(args.output).write_bytes(artefact)
        print(f"wrote {visible(args.output)}", file=sys.stderr)
        return 0
    if args.output:
        Path(args.output).write_text(artefact, encoding="utf-8")
        print(f"wrote {visible(args.output)}", file=sys.stderr)
    else:
        sys.stdout.write(artefact)
    return 0
