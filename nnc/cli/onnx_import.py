"""``nnc import model.onnx -o model.nn [--weights OUT.safetensors] [--name NAME]``."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from nnc.errors import NncError, visible
from nnc.userfiles import read_regular


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import",
        help="turn an ONNX model into a .nn spec and a weights file",
        description="Import an ONNX model as a readable .nn spec (layers named after the "
        "ONNX nodes where those are valid names) and its weights in nnc's canonical "
        "layouts. The spec passes `nnc check` and compiles to every backend. "
        "Supported ONNX ops and their conversions: docs/backends/onnx.md.",
    )
    p.add_argument("model", metavar="MODEL", help=".onnx file")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="the .nn file to write")
    p.add_argument(
        "--weights",
        metavar="FILE",
        help="where to write the canonical weights, a safetensors file (default: OUT with "
        "the suffix .safetensors)",
    )
    p.add_argument("--name", metavar="NAME", help="model name (default: from the ONNX graph)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from nnc._version import __version__
    from nnc.backends.codegen import comment_text
    from nnc.backends.onnx import import_model
    from nnc.backends.onnx.import_blocks import with_blocks
    from nnc.ir.passes import count_params
    from nnc.ir.weights import SAFETENSORS, save_npz, save_weights_file, weights_output

    output = Path(args.output)
    weights_path = weights_output(args.weights) if args.weights else output.with_suffix(SAFETENSORS)
    imported = import_model(args.model, args.name)
    check = "not compared with the original (onnxruntime is not installed)"
    if importlib.util.find_spec("onnxruntime") is not None:
        from nnc.backends.onnx.verify import self_check

        check = self_check(read_regular(args.model, 2**31 - 1), imported).summary
    # The file name is escaped: a newline in it must not start a line of the spec.
    origin = comment_text(Path(args.model).name)
    # A repeated residual unit is written once, as a block (the weights renamed to fit).
    spec, weights = with_blocks(imported.program, imported.model, imported.weights)
    text = f"# Imported by nnc from {origin}.\n" + spec
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise NncError(f"cannot write {output}: {exc.strerror}") from None
    save_weights_file(weights_path, weights, {"nnc_version": __version__})
    if imported.standardize is not None:
        # Where `nnc eval` and `nnc predict` look for a run's statistics.
        mean, std = imported.standardize
        statistics = save_npz(weights_path.parent / "standardize.npz", {"mean": mean, "std": std})
        imported.notes.append(
            f"the input statistics are in {statistics}; nnc eval and nnc predict apply them "
            "for a train recipe with `standardize true`"
        )
    params = count_params(imported.program, imported.model)
    model = imported.program.models[imported.model]
    print(
        visible(
            f"wrote {output} (model {imported.model}, {len(model.nodes)} layers, "
            f"{params:,} parameters) and {weights_path}"
        ),
        file=sys.stderr,
    )
    print(check, file=sys.stderr)
    for note in imported.notes:
        # Notes quote the file's own names: control characters are shown escaped.
        print(f"note: {visible(note)}", file=sys.stderr)
    return 0
