"""Start-up of ``nnc check``: the median of 20 whole-process runs (issue 23).

    python benchmarks/check_startup.py [SPEC] [--runs N] [--against CHECKOUT]

Prints the median wall time and the median CPU time (user + system) of
``python -m nnc.cli.main check SPEC``, and the same for ``python -c pass``, the floor
that no Python command goes below. CPU time is the steadier figure on a loaded machine.
The target is a wall median of 0.15 s or less for ``examples/digits_cnn.nn``.

The runs are interleaved (floor, this checkout, ``--against`` another checkout, e.g.
``git worktree add /tmp/before HEAD~3``), so a change in the machine's load falls on
each alike. Python writes and then reads bytecode for nnc's modules, as for an
installed nnc: without it (``PYTHONDONTWRITEBYTECODE``, which this script clears for
its runs) every start compiles nnc's sources again, some 0.1 s more.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def once(command: list[str], root: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one run of ``command`` with ``root`` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    before = os.times()
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, cwd=root, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = os.times()
    cpu = after.children_user - before.children_user
    return wall, cpu + after.children_system - before.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", default="examples/digits_cnn.nn")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--against", type=Path, help="another checkout, measured alike")
    args = parser.parse_args()
    check = [sys.executable, "-m", "nnc.cli.main", "check", args.spec]
    rows: dict[str, tuple[list[str], Path]] = {
        "python -c pass": ([sys.executable, "-c", "pass"], ROOT),
        f"nnc check {args.spec}": (check, ROOT),
    }
    if args.against:
        rows[f"  {args.against}"] = (check, args.against.resolve())
    for command, root in rows.values():  # writes the bytecode
        once(command, root)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in rows}
    for _ in range(args.runs):
        for name, (command, root) in rows.items():
            times[name].append(once(command, root))
    print(f"{'command':<40} {'wall median':>12} {'cpu median':>11}")
    for name, runs in times.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"{name:<40} {wall:>11.3f}s {cpu:>10.3f}s")


if __name__ == "__main__":
    main()
