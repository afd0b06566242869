"""Soak-fuzz the parser and checker.

    python scripts/fuzz_frontend.py --count 100000 [--seed 0]

Runs random programs, mutated examples and non-UTF-8 files through the front end
and counts outcomes. Any input that crashes, hangs or reports an error located
outside the input is written to ``fuzz-failures/`` and counted as a failure.
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fuzz.generators import EXAMPLES, mutate, mutate_bytes, random_program
from tests.fuzz.harness import outcome, outcome_bytes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("fuzz-failures"))
    args = parser.parse_args()

    rng = random.Random(args.seed)
    counts: collections.Counter[str] = collections.Counter()
    failures = 0
    start = time.time()
    sources = [p.read_text() for p in EXAMPLES]
    raw = [p.read_bytes() for p in EXAMPLES]
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.count):
            kind = ("program", "mutation", "mutation", "bytes")[i % 4]
            seed = rng.randrange(2**32)
            local = random.Random(seed)
            try:
                if kind == "program":
                    text = random_program(local)
                    counts[f"program:{outcome(text)}"] += 1
                elif kind == "mutation":
                    text = local.choice(sources)
                    for _ in range(local.randint(1, 3)):
                        text = mutate(text, local)
                    counts[f"mutation:{outcome(text)}"] += 1
                else:
                    data = mutate_bytes(local.choice(raw), local)
                    text = data.decode("utf-8", errors="replace")
                    counts[f"bytes:{outcome_bytes(data, Path(tmp) / 'f.nn')}"] += 1
            except BaseException as exc:  # the finding itself: keep going, record it
                if isinstance(exc, KeyboardInterrupt):
                    raise
                failures += 1
                args.out.mkdir(exist_ok=True)
                (args.out / f"{kind}-{seed}.nn").write_text(text, errors="replace")
                (args.out / f"{kind}-{seed}.txt").write_text(traceback.format_exc())
                counts[f"{kind}:FAILURE {type(exc).__name__}"] += 1
            if (i + 1) % 10_000 == 0:
                print(
                    f"{i + 1} inputs, {failures} failures, {time.time() - start:.0f} s", flush=True
                )
    elapsed = time.time() - start
    rate = args.count / elapsed
    print(f"\n{args.count} inputs in {elapsed:.0f} s ({rate:.0f}/s), {failures} failures")
    for key, n in sorted(counts.items()):
        print(f"  {key:45s} {n:8d}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
