"""`nnc check` time and memory on long specs: 10k, 100k and 1M characters, on one
line and on many (issue 26: 1.4 s at 40 KB on one line, 5.1 s at 160 KB, 8-11 s for
100k lines, 55 s and 3.1 GB for a 2 MB line of strings).

    python benchmarks/check_long_lines.py [--sizes 10000 100000 1000000]

Each spec is checked in a fresh process that has imported nnc and checked a small
spec first, so the figures are the check's own: wall seconds, and the peak resident
memory it added (MB). Prints a table; time per character should stay flat. The CPU
seconds are the steadier figure on a loaded machine (wall time counts the waits).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYER = "dense(4, activation = relu)"

# name -> (head, unit, separator, tail): the spec is head + units joined + tail
KINDS = {
    "layers, one line": ("model M { input x: [4] ", LAYER, " ", " }\n"),
    "layers, a line each": ("model M {\n    input x: [4]\n", "    " + LAYER, "\n", "\n}\n"),
    "strings, one line": ("model M { input x: [4] ", '"x"', " ", " }\n"),
    "a comment, one line": ("model M { input x: [4] relu } # ", "y", "", "\n"),
}

CHILD = r"""
import json, resource, sys, time
from nnc.cli.main import main
main(["check", "-q", sys.argv[2]])  # imports and warms up
with open("/proc/self/statm") as f:
    before = int(f.read().split()[1]) * resource.getpagesize()
start, cpu = time.perf_counter(), time.process_time()
code = main(["check", "-q", sys.argv[1]])
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"code": code, "seconds": seconds, "cpu": cpu, "peak": max(peak - before, 0)}))
"""


def spec(kind: str, chars: int) -> str:
    head, unit, sep, tail = KINDS[kind]
    count = max(1, (chars - len(head) - len(tail)) // (len(unit) + len(sep)))
    return head + sep.join([unit] * count) + tail


def measure(path: Path, small: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(small)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = parser.parse_args()
    print("| spec | chars | lines | exit | seconds | CPU s | CPU µs per char | peak MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "small.nn"
        small.write_text("model S {\n    input x: [2]\n    dense(2)\n}\n")
        for kind in KINDS:
            for size in args.sizes:
                text = spec(kind, size)
                path = Path(tmp) / "long.nn"
                path.write_text(text)
                r = measure(path, small)
                print(
                    f"| {kind} | {len(text):,} | {text.count(chr(10)):,} | {r['code']} "
                    f"| {r['seconds']:.3f} | {r['cpu']:.3f} | {1e6 * r['cpu'] / len(text):.2f} "
                    f"| {r['peak'] / 1e6:.0f} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
