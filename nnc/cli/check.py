"""``nnc check FILE...``: parse, type and validate specs."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator

from nnc.collector import fewer_collections
from nnc.errors import NncError, visible


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="parse, shape-check and validate .nn files",
        description="Parse, shape-check and validate each file; report every error with "
        "its file, line and column. Exit 1 if any file has an error. A file with a search "
        "space (choice, uniform, loguniform, integer) is checked at every value of each "
        "distribution (each option, both ends of a range, every value of a short integer "
        "range), the others at their first value; an error a value causes names it.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help=".nn files to check")
    p.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    p.add_argument(
        "--memory-budget",
        metavar="SIZE",
        help="refuse specs whose parameters or activations exceed SIZE (e.g. 8GiB; "
        "default 16GiB or $NNC_MEMORY_BUDGET)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with _short_lived():
        return _check(args)


@contextlib.contextmanager
def _short_lived() -> Iterator[None]:
    """What a start-up of a fraction of a second needs (issue 23), undone after.

    Importing the front end and checking allocate some 500,000 objects that live to
    the end and free few: with the collector's first generation 700 allocations long,
    its 80-odd passes took a sixth of `nnc check`'s time. And pydantic, on building
    its first validator, looks for plugins in the entry points of every installed
    distribution (a few ms of reading metadata files); nnc's IR wants none, so unless
    PYDANTIC_DISABLE_PLUGINS is set already, the check runs with plugins off."""
    ours = "PYDANTIC_DISABLE_PLUGINS" not in os.environ
    if ours:
        os.environ["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
    try:
        with fewer_collections():
            yield
    finally:
        if ours:
            os.environ.pop("PYDANTIC_DISABLE_PLUGINS", None)


def _check(args: argparse.Namespace) -> int:
    from nnc.dsl import read_spec
    from nnc.dsl.diagnose import Diagnosis
    from nnc.dsl.space import diagnose_space
    from nnc.ir.passes.resources import parse_size
    from nnc.ir.space import SearchSpace

    budget = parse_size(args.memory_budget) if args.memory_budget else None
    failed = 0
    for path in args.files:
        try:
            found, space = diagnose_space(read_spec(path), path, memory_budget=budget)
        except NncError as unreadable:
            found, space = Diagnosis(None, [unreadable]), SearchSpace()
        for err in found.errors:
            print(err.render(), file=sys.stderr)
        program = found.program
        if program is None:
            failed += 1
            if len(found.errors) > 1:
                print(f"{visible(path)}: {len(found.errors)} errors", file=sys.stderr)
            continue
        if not args.quiet:
            n_models, n_recipes = len(program.models), len(program.recipes)
            searched = (
                f", a search space of {len(space)} parameter{'s' * (len(space) != 1)}: "
                + ", ".join(space.names)
                if len(space)
                else ""
            )
            print(
                f"{visible(str(path))}: ok ({n_models} model{'s' * (n_models != 1)}, "
                f"{n_recipes} recipe{'s' * (n_recipes != 1)}{searched})"
            )
    return 1 if failed else 0
