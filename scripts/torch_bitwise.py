"""Train examples a few steps on torch under two nnc trees and compare bit for bit.

    python scripts/torch_bitwise.py OLD_TREE NEW_TREE [example ...] [--steps 3]

Each tree (a checkout of nnc) runs in a subprocess with its own PYTHONPATH: it builds
the torch runtime of each example from nnc's initial weights, takes ``--steps``
training steps on fixed random batches (a GAN: discriminator and generator steps)
and saves the losses, weights and optimizer state. The two results must be equal
bit for bit: a change to the generated code's structure (nested modules, variable
names) must not change a number.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

EXAMPLES = (
    "resnet_block",
    "unet_blobs",
    "se_digits",
    "custom_layer",
    "char_transformer",
    "vit_digits",
    "gan",
)

_WORKER = r"""
import sys
import numpy as np
import nnc
from nnc.backends import torch as backend
from nnc.ir.passes import check
from nnc.ir.training import GanRecipe

example, steps, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
program = check(nnc.load(f"examples/{example}.nn"))
rng = np.random.default_rng(0)
result = {}
gans = [r for r in program.recipes.values() if isinstance(r, GanRecipe)]

def batch(t, n=8, high=10):
    shape = (n, *t.shape)
    if t.dtype == "int64":
        return rng.integers(0, high, size=shape).astype(np.int64)
    return rng.standard_normal(shape).astype(np.float32)

if gans:
    gan = gans[0]
    runtime = backend.build_gan(program, gan.name)
    g = program.models[gan.generator]
    d = program.models[gan.discriminator]
    for step in range(steps):
        z = batch(g.inputs[0].type)
        x = batch(d.inputs[0].type)
        for key, value in runtime.discriminator_step(x, z, 0.001).items():
            result[f"loss{step}.d.{key}"] = np.float64(value)
        for key, value in runtime.generator_step(z, 0.001).items():
            result[f"loss{step}.g.{key}"] = np.float64(value)
else:
    model = program.model()
    runtime = backend.build(program, model.name)
    out_type = model.output_types[0]
    for step in range(steps):
        x = batch(model.inputs[0].type)
        logits = rng.standard_normal((8, *out_type.shape))
        y = np.eye(out_type.shape[-1], dtype=np.float32)[logits.argmax(-1)]
        result[f"loss{step}"] = np.float64(runtime.train_step(x, y, 0.001))
    result["forward"] = runtime.forward(x)
for key, value in runtime.get_weights().items():
    result[f"weight.{key}"] = value
for key, value in runtime.get_optimizer_state().items():
    result[f"state.{key}"] = value
np.savez(out, **result)
"""


def run(tree: Path, example: str, steps: int, out: Path) -> dict[str, np.ndarray]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    subprocess.run(
        [sys.executable, "-c", _WORKER, example, str(steps), str(out)],
        cwd=tree,
        env=env,
        check=True,
    )
    with np.load(out) as data:
        return {k: data[k] for k in data.files}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("examples", nargs="*", default=list(EXAMPLES))
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for example in args.examples:
            old = run(args.old.resolve(), example, args.steps, Path(tmp) / "old.npz")
            new = run(args.new.resolve(), example, args.steps, Path(tmp) / "new.npz")
            differ = sorted(set(old) ^ set(new))
            differ += [
                k
                for k in sorted(set(old) & set(new))
                if old[k].dtype != new[k].dtype
                or old[k].shape != new[k].shape
                or old[k].tobytes() != new[k].tobytes()
            ]
            losses = [f"{float(v):.6f}" for k, v in old.items() if k.startswith("loss")]
            if differ:
                failed += 1
                print(f"{example}: DIFFERENT in {len(differ)} of {len(old)} arrays: {differ[:5]}")
            else:
                print(
                    f"{example}: bitwise equal ({len(old)} arrays after {args.steps} steps; "
                    f"losses {', '.join(losses)})"
                )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
