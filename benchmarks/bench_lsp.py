"""How long ``nnc lsp`` takes to publish diagnostics after a change to a large file.

A 1,000-layer model (500 x ``dense(32) relu``, each a layer and an activation node) is
opened, then changed ``--repeat`` times, alternating between a version with an error
near the end (a misspelt ``relu``) and the fixed version. Each figure is the wall time
from writing the ``didChange`` notification to reading the ``publishDiagnostics`` for
that version, through the same JSON-RPC pipes an editor uses. The issue's target is
under 200 ms.

    python benchmarks/bench_lsp.py [--repeat 20] [--layers 1000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.lsp.client import LspClient  # noqa: E402

TARGET_MS = 200.0


def spec(layers: int, broken: bool) -> str:
    lines = ["model Big {", "    input x: [32]"]
    lines += ["    dense(32) relu"] * (layers // 2)
    if broken:
        lines[-3] = "    dense(32) rleu"
    return "\n".join([*lines, "    dense(10)", "}", ""])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--layers", type=int, default=1000)
    args = parser.parse_args()
    client = LspClient()
    client.initialize()
    uri = "file:///bench/big.nn"
    client.open(uri, spec(args.layers, broken=False))
    client.diagnostics(uri, 1)
    times: dict[bool, list[float]] = {True: [], False: []}
    found = []
    for k in range(args.repeat):
        broken = k % 2 == 0
        text = spec(args.layers, broken)
        start = time.perf_counter()
        client.change(uri, text, k + 2)
        diagnostics = client.diagnostics(uri, k + 2)
        times[broken].append((time.perf_counter() - start) * 1000)
        found.append(len(diagnostics) == (1 if broken else 0))
    client.close()
    nodes = args.layers + 1
    print(f"{nodes:,} nodes ({args.layers:,} layers + the output dense), {args.repeat} changes")
    every = times[True] + times[False]
    for label, ms in (("with the error", times[True]), ("fixed", times[False]), ("all", every)):
        print(
            f"diagnostics after a change, {label}: median {statistics.median(ms):.0f} ms, "
            f"min {min(ms):.0f} ms, max {max(ms):.0f} ms"
        )
    print(f"target: < {TARGET_MS:.0f} ms; every change got its diagnostics right: {all(found)}")
    return 0 if all(found) and statistics.median(every) < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
