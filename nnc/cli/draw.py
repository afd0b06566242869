"""``nnc draw FILE [--model M] [--depth N] -o OUT.svg|png|html|dot``: a picture of a
network, from a ``.nn`` file or an ONNX model."""

from __future__ import annotations

import argparse
import sys

from nnc.cli.options import whole_number


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "draw",
        help="a picture of a network (svg, png, or an offline html viewer)",
        description="Draw a model: every layer with its op, arguments, output shape and "
        "parameter count, the data flow between them, and blocks and models used as "
        "layers as nested clusters. Graphviz lays it out (apt-get install graphviz). "
        "The suffix of OUT picks the form: .svg, .png, .dot, or .html, one offline file "
        "with pan, zoom, and a click on a layer for its details and source line. FILE "
        "may be a .nn spec or an .onnx model (drawn through nnc's importer).",
    )
    p.add_argument("file", metavar="FILE", help=".nn spec or .onnx model")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="OUT.svg|png|html|dot")
    p.add_argument("--model", metavar="NAME", help="model to draw (default: the main one)")
    p.add_argument(
        "--depth",
        type=whole_number(0, "expected 0 or more"),
        metavar="N",
        help="draw clusters nested N deep as single boxes (0: every block and called model "
        "folded; default: all expanded)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nnc.draw import FORMATS, DrawError, load_drawable, render
    from nnc.errors import visible

    fmt = Path(args.output).suffix.lower().lstrip(".")
    if fmt not in FORMATS:  # before the spec is read: a typo in OUT costs nothing
        raise DrawError(
            "the output must end in "
            + ", ".join(f".{f}" for f in FORMATS)
            + f". Received: {visible(args.output)}"
        )
    drawable = load_drawable(args.file)
    diagram = drawable.diagram(args.model, args.depth)
    Path(args.output).write_bytes(render(diagram, fmt))
    layers = sum(b.kind == "layer" for b in diagram.boxes)
    folded = sum(b.kind == "cluster" for b in diagram.boxes)
    print(
        f"wrote {visible(args.output)} ({diagram.title}: {layers} layers, "
        f"{len(diagram.clusters)} clusters" + (f", {folded} folded" if folded else "") + ")",
        file=sys.stderr,
    )
    return 0
