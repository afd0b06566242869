"""``nnc search FILE --trials N``: run a recipe's search space as an Optuna study."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nnc.cli.options import add_backend_argument
from nnc.cli.train import positive_int, spec_source
from nnc.errors import visible


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search",
        help="run a recipe's search space as an Optuna study",
        description="Sample the search space of FILE (choice, uniform, loguniform, integer) "
        "in an Optuna study. Each trial trains one sampled recipe, written as trial.nn into "
        "its run folder (OUT/trial-NNNN); its value is the best epoch's objective, and each "
        "epoch's figure feeds Optuna's median pruner. The study lives in a database "
        "(default: OUT/study.db), so several processes may join it and an interrupted "
        "search resumes; finished trials are never rerun. Writes results.csv, best.nn, "
        "objective.png and importance.png to OUT. See docs/search.md.",
    )
    p.add_argument("file", metavar="FILE", help="the .nn file with a search space")
    p.add_argument(
        "--trials",
        type=positive_int,
        default=20,
        metavar="N",
        help="trials in the study, over every process that joins it (default 20)",
    )
    add_backend_argument(p, trains=True, what="trains each trial")
    p.add_argument(
        "--storage",
        metavar="URL",
        help="the study's database: sqlite:///study.db (default: OUT/study.db) or a "
        "PostgreSQL URL, postgresql://user:password@host/db, for several machines",
    )
    p.add_argument("--study", metavar="NAME", help="the study's name (default: FILE's stem)")
    p.add_argument(
        "--jobs", type=positive_int, default=1, metavar="J", help="trials at once here (threads)"
    )
    p.add_argument(
        "--timeout", type=float, metavar="S", help="start no trial after S seconds (this process)"
    )
    p.add_argument(
        "--objective",
        metavar="FIGURE",
        help="the figure to optimise, such as val_accuracy (default: the recipe's "
        "early-stopping monitor, else val_loss)",
    )
    p.add_argument("--recipe", metavar="NAME", help="the train recipe (default: the only one)")
    p.add_argument("--epochs", type=positive_int, metavar="N", help="override the epochs")
    p.add_argument(
        "--pruner",
        choices=("median", "none"),
        default="median",
        help="median (default): stop a trial whose figure is worse than the median of the "
        "earlier trials at that epoch (once 5 trials have finished, from epoch 3 on); none: never",
    )
    p.add_argument("--seed", type=int, metavar="N", help="the sampler's seed (default: fresh)")
    p.add_argument("--out", metavar="DIR", help="the search folder (default: search/<FILE stem>)")
    p.add_argument(
        "--stale-after",
        type=positive_int,
        default=30,
        metavar="S",
        help="fail a running trial whose process has been silent for S seconds, such as "
        "one killed mid-trial; the next process to start a trial does it (default 30)",
    )
    p.add_argument("--no-tensorboard", action="store_true", help="write no TensorBoard event files")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from nnc.search import SearchOptions, run_search
    from nnc.search.report import format_table

    out = Path(args.out) if args.out else Path("search") / Path(args.file).stem
    options = SearchOptions(
        trials=args.trials,
        out=out,
        backend=args.backend,
        storage=args.storage,
        study=args.study,
        jobs=args.jobs,
        timeout=args.timeout,
        objective=args.objective,
        recipe=args.recipe,
        epochs=args.epochs,
        pruner=args.pruner,
        seed=args.seed,
        tensorboard=not args.no_tensorboard,
        stale_after=args.stale_after,
    )
    with spec_source(args.file):
        result = run_search(args.file, options)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.quiet:
        return 0 if result.best is not None else 1
    names: list[str] = []  # the parameters, in the order the trials met them
    for row in result.rows:
        names += [n for n in row.values if n not in names]
    print(format_table(result.rows, names))
    states = [r.state for r in result.rows]
    print(
        f"\n{len(states)} trials: {states.count('COMPLETE')} complete, "
        f"{states.count('PRUNED')} pruned, {states.count('FAIL')} failed "
        f"(study {visible(str(result.study))} in {visible(str(result.storage))})"
    )
    if result.best is None:
        print("no trial completed; nothing to save", file=sys.stderr)
        return 1
    best = result.best
    print(
        f"best: trial {best.number}, {result.objective} = {best.objective:.6g}; "
        f"recipe in {visible(str(out / 'best.nn'))}"
    )
    return 0
