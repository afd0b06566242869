"""Soak-fuzz the parser and checker.

    python scripts/fuzz_frontend.py --count 100000 [--seed 0] [--stop-after SECONDS]

Runs random programs, mutated examples, non-UTF-8 files and special files (a named
pipe, ``/dev/zero``, links to them, a folder) through the front end and counts
outcomes. Each input runs in a child process (``tests.fuzz.harness.Sandbox``) under a
CPU-time limit (5 s plus 1 s per 20,000 characters), a memory limit (``--memory``
MiB of address space beyond the child's start, ``RLIMIT_AS``) and a wall-clock
timeout. An input that crashes, reports an error located outside the input, or
passes a limit is written to ``fuzz-failures/`` and counted as a failure.
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fuzz.generators import (
    EXAMPLES,
    SPECIAL_FILES,
    mutate,
    mutate_bytes,
    random_program,
)
from tests.fuzz.harness import (
    FAILURES,
    TIME_LIMIT_S,
    Finding,
    Sandbox,
    run_job,
    time_allowed,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("fuzz-failures"))
    parser.add_argument("--memory", type=int, default=1024, help="MiB per child (1024)")
    parser.add_argument(
        "--stop-after", type=float, default=None, help="stop after this many seconds"
    )
    args = parser.parse_args()

    rng = random.Random(args.seed)
    counts: collections.Counter[str] = collections.Counter()
    found: collections.Counter[str] = collections.Counter()
    start = time.time()
    sources = [p.read_text() for p in EXAMPLES]
    raw = [p.read_bytes() for p in EXAMPLES]
    done = 0
    with tempfile.TemporaryDirectory() as tmp, Sandbox(run_job, args.memory * 1024**2) as box:
        for i in range(args.count):
            if args.stop_after is not None and time.time() - start > args.stop_after:
                break
            kind = (
                "special" if i % 50 == 49 else ("program", "mutation", "mutation", "bytes")[i % 4]
            )
            seed = rng.randrange(2**32)
            local = random.Random(seed)
            text = ""
            if kind == "program":
                text = random_program(local)
                job: tuple[str, object, object] = ("text", text, "fuzz.nn")
            elif kind == "mutation":
                text = local.choice(sources)
                for _ in range(local.randint(1, 3)):
                    text = mutate(text, local)
                job = ("text", text, "fuzz.nn")
            elif kind == "bytes":
                data = mutate_bytes(local.choice(raw), local)
                text = data.decode("utf-8", errors="replace")
                job = ("bytes", data, str(Path(tmp) / "f.nn"))
            else:
                text = local.choice(SPECIAL_FILES)
                job = ("special", text, tmp)
            seconds = time_allowed(text) if kind != "special" else TIME_LIMIT_S
            try:
                counts[f"{kind}:{box(job, seconds)}"] += 1
            except Finding as finding:
                found[finding.kind] += 1
                args.out.mkdir(exist_ok=True)
                (args.out / f"{kind}-{seed}.nn").write_text(text, errors="replace")
                (args.out / f"{kind}-{seed}.txt").write_text(f"{finding}\n")
                counts[f"{kind}:FAILURE {finding.kind}"] += 1
            done += 1
            if done % 10_000 == 0:
                failures = sum(found.values())
                print(
                    f"{done} inputs, {failures} failures, {time.time() - start:.0f} s", flush=True
                )
    elapsed = time.time() - start
    failures = sum(found.values())
    print(
        f"\n{done} inputs in {elapsed:.0f} s ({done / elapsed:.0f}/s), {failures} failures, "
        f"{box.started} child processes"
    )
    for key, what in FAILURES.items():
        print(f"  {what:45s} {found[key]:8d}")
    for key, n in sorted(counts.items()):
        print(f"  {key:45s} {n:8d}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
