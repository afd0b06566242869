"""Soak-fuzz the backends against each other with random valid networks.

    python scripts/fuzz_equivalence.py --count 500 [--seed 0] [--steps 6] [--out DIR]
    python scripts/fuzz_equivalence.py --long          # 2000 programs

Each program (``tests/equivalence/networks.py``) must pass ``nnc check``, emit on
every backend, and agree with the float64 reference on every installed backend:
forward outputs, gradients, ``--steps`` training steps, and optimizer state moved
between every pair of training backends half-way. A program that fails (or crashes)
is written to ``--out`` with its report; one whose float64 reference overflows is
counted as ``diverged`` (nothing to compare; its seed is printed), one that raises
anywhere (the generator, ``nnc check``, an emitter, a backend) as ``error``. Each
mismatch and error is printed with its
seed, its program and the report: every backend pair's worst tensor for the forward
pass, the gradients and training, and the first deviating layer. Rerun one program
with ``--only SEED``. The summary counts outcomes and how often each op was exercised.
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.equivalence.fuzzing import differential
from tests.equivalence.matrix import explain
from tests.equivalence.networks import ALL_OPS, RandomChooser, ops_of, random_network


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500, help="programs to run (500)")
    parser.add_argument("--long", action="store_true", help="2000 programs")
    parser.add_argument("--seed", type=int, default=0, help="seed of the program seeds (0)")
    parser.add_argument("--steps", type=int, default=6, help="training steps per program (6)")
    parser.add_argument("--out", type=Path, default=Path("fuzz-failures"))
    parser.add_argument("--only", type=int, help="run the one program of this program seed")
    args = parser.parse_args()
    count = 2000 if args.long else args.count

    rng = random.Random(args.seed)
    seeds = [args.only] if args.only is not None else [rng.randrange(2**32) for _ in range(count)]
    count = len(seeds)
    outcomes: collections.Counter[str] = collections.Counter()
    exercised: collections.Counter[str] = collections.Counter()
    start = time.time()
    for i, seed in enumerate(seeds):
        source = ""
        try:
            source = random_network(RandomChooser(seed))
            exercised.update(ops_of(source))
            outcome = differential(source, steps=args.steps)
            status, message = outcome.status, outcome.message
            if args.only is not None and outcome.report is not None:
                message = explain(outcome.report)  # the deviations of a passing run too
        except Exception:  # the finding itself: record it and go on
            status, message = "error", traceback.format_exc()
        outcomes[status] += 1
        if status == "diverged" and args.only is None:  # its seed, to rerun it
            reason = message.strip().splitlines()[-1] if message.strip() else ""
            print(f"diverged: seed {seed}: {reason}", flush=True)
        elif status in ("mismatch", "error") or args.only is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"{seed}.nn").write_text(source)
            (args.out / f"{seed}.txt").write_text(message)
            print(
                f"{status}: seed {seed} (written to {args.out})\n{source}\n{message}\n", flush=True
            )
        forget_generated_modules()
        if (i + 1) % 25 == 0:
            print(f"{i + 1} programs, {dict(outcomes)}, {time.time() - start:.0f} s", flush=True)
    elapsed = time.time() - start
    print(f"\n{count} programs in {elapsed:.0f} s ({elapsed / count:.2f} s each)")
    for status, n in sorted(outcomes.items()):
        print(f"  {status:10s} {n:6d}")
    print("ops exercised (programs using each):")
    for op in sorted(ALL_OPS):
        print(f"  {op:18s} {exercised[op]:6d}")
    return 1 if outcomes["mismatch"] or outcomes["error"] else 0


def forget_generated_modules() -> None:
    """Generated backend modules stay in sys.modules once imported; a soak run of
    thousands of programs would keep every one (and its traced graphs) alive."""
    for name in [n for n in sys.modules if n.startswith("nnc_generated_")]:
        del sys.modules[name]


if __name__ == "__main__":
    sys.exit(main())
