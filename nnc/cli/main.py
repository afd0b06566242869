"""Entry point of the ``nnc`` command.

Exit codes: 0 success, 1 a user error (bad spec, data or weights, or a file the
system will not read or write), 2 a usage error (bad flags), 3 an internal error (a
bug in nnc: please report it).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from nnc.errors import NncError, ResourceError, visible

# Command name -> module under nnc.cli. Each module defines ``register(subparsers)``
# and ``run(args) -> int``; it is imported only when listed here, and heavy imports
# happen inside ``run``.
COMMANDS: dict[str, str] = {
    "check": "check",
    "summary": "summary",
    "fmt": "fmt",
    "ir": "ir",
    "compile": "compile",
    "train": "train",
    "search": "search",
    "eval": "evaluate",
    "predict": "predict",
    "verify": "verify",
    "export": "onnx_export",
    "import": "onnx_import",
    "run": "onnx_run",
    "opt": "opt",
    "draw": "draw",
    "lsp": "lsp",
}


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose epilog may be written only when help is asked for:
    ``late_epilog`` (nnc opt lists its passes, which are the rewrite engine's to
    know, and every command would pay for importing it)."""

    late_epilog: Callable[[], str] | None = None

    def format_help(self) -> str:
        if self.late_epilog is not None:
            self.epilog, self.late_epilog = self.late_epilog(), None
        return super().format_help()


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command-line parser. Given the arguments, and when they name a command,
    only that command's module is imported and registered: `nnc check` pays for
    neither the backends' registry nor the other commands' imports. Otherwise (no
    command, ``--help``, a misspelt command) every command is, for the listing."""
    parser = Parser(
        prog="nnc",
        description="Compile .nn neural-network specs to NumPy, PyTorch, TensorFlow and ONNX.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    named = argv[0] if argv else None
    modules = [COMMANDS[named]] if named in COMMANDS else list(COMMANDS.values())
    for module in modules:
        importlib.import_module(f"nnc.cli.{module}").register(sub)
    return parser


def _version() -> str:
    from nnc._version import __version__

    return f"nnc {__version__}"


def out_of_memory(command: str, exc: MemoryError) -> ResourceError:
    """The typed error for a MemoryError: what ran out, and what to do."""
    detail = str(exc).strip() or "an allocation failed"
    return ResourceError(
        f"out of memory during 'nnc {command}': {detail}. The machine has less free "
        "memory than this command needs; set NNC_MEMORY_BUDGET to "
        "the memory free so that `nnc check` refuses what cannot fit, or use a smaller "
        "model or batch"
    )


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except NncError as err:
        print(err.render(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except MemoryError as exc:  # past what `nnc check` estimated, or another process's
        print(out_of_memory(args.command, exc).render(), file=sys.stderr)
        return 1
    except OSError as exc:  # the file system refused: a missing folder, permissions, a full disk
        where = f"{visible(str(exc.filename))}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug in nnc: say so plainly, traceback on request
        if os.environ.get("NNC_DEBUG"):
            raise
        print(
            f"internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in nnc. Run again with NNC_DEBUG=1 for the traceback and report it.",
            file=sys.stderr,
        )
        return 3


if __name__ == "__main__":
    sys.exit(main())
