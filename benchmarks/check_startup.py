"""Start-up of ``nnc check``: the median of 20 whole-process runs (issue 23).

    python benchmarks/check_startup.py [SPEC] [--runs N]

Prints the median wall time and the median CPU time (user + system) of
``python -m nnc.cli.main check SPEC``, and the same for ``python -c pass``, the floor
that no Python command goes below. CPU time is the steadier figure on a loaded machine.
The target is a wall median of 0.15 s or less for ``examples/digits_cnn.nn``.
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


def timed(command: list[str], runs: int) -> tuple[float, float]:
    """The median wall and CPU seconds of ``runs`` runs of ``command``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    walls, cpus = [], []
    for _ in range(runs):
        before = os.times()
        start = time.perf_counter()
        subprocess.run(command, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
        after = os.times()
        user = after.children_user - before.children_user
        cpus.append(user + after.children_system - before.children_system)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", default="examples/digits_cnn.nn")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    floor = timed([sys.executable, "-c", "pass"], args.runs)
    check = timed([sys.executable, "-m", "nnc.cli.main", "check", args.spec], args.runs)
    print(f"{'command':<40} {'wall median':>12} {'cpu median':>11}")
    print(f"{'python -c pass':<40} {floor[0]:>11.3f}s {floor[1]:>10.3f}s")
    print(f"{'nnc check ' + args.spec:<40} {check[0]:>11.3f}s {check[1]:>10.3f}s")


if __name__ == "__main__":
    main()
