"""``nnc lsp``: the language server for editors, over stdin and stdout."""

from __future__ import annotations

import argparse
import importlib.util

from nnc.errors import NncError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "lsp",
        help="the language server for editors (stdio)",
        description="Serve the Language Server Protocol on stdin and stdout: diagnostics "
        "from nnc's checker as you type (the same line:column as nnc check), hover with "
        "output shapes, parameters and resolved recipe settings, completion of layers, "
        "arguments, recipe keys and names, go to definition of blocks and models, "
        "formatting (nnc fmt) and document symbols. Needs the lsp extra: "
        'pip install "nnc[lsp]". The VS Code extension in editors/vscode starts it.',
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("pygls") is None:
        raise NncError(
            "nnc lsp needs pygls, which is not installed",
            hint='install the lsp extra: pip install "nnc[lsp]"',
        )
    from nnc.lsp.server import main

    main()
    return 0
