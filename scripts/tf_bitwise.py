"""Whether two trees' TensorFlow backends train bit for bit alike (issue 18).

    PYTHONPATH=/work/main python scripts/tf_bitwise.py dump /tmp/before.npz
    PYTHONPATH=$PWD python scripts/tf_bitwise.py dump /tmp/after.npz
    python scripts/tf_bitwise.py compare /tmp/before.npz /tmp/after.npz

``dump`` builds the TensorFlow runtime of each example below (seed 3), trains it 3
steps on fixed random batches of 8 (the GAN: 3 discriminator and generator steps),
and saves the canonical weights, the optimizer state, the losses and a final forward
pass. ``compare`` prints, per example, whether every array is bitwise equal and the
largest deviation relative to max(1, max |before|).
"""

from __future__ import annotations

import sys

import numpy as np

EXAMPLES = (
    "digits_cnn",
    "sequence_lstm",
    "resnet_block",
    "char_transformer",
    "gan",
    "conv3d_small",
    "vit_digits",
)
STEPS, BATCH, LR = 3, 8, 0.01


def trained(example: str) -> dict[str, np.ndarray]:
    import nnc
    from nnc.backends import tensorflow as backend
    from nnc.backends.codegen import select
    from tests.backends.tensorflow.helpers import sample_inputs, sample_target

    program = nnc.load(f"examples/{example}.nn")
    rng = np.random.default_rng(1)
    if example == "gan":
        gan = backend.build_gan(program, seed=3)
        for _ in range(STEPS):
            x = rng.normal(size=(BATCH, 64)).astype(np.float32)
            z = rng.normal(size=(BATCH, 16)).astype(np.float32)
            gan.discriminator_step(x, z, LR)
            gan.generator_step(z, LR)
        state = gan.get_optimizer_state()
        return gan.get_weights() | {f"opt:{k}": v for k, v in state.items()}
    model, recipe = select(program, None)
    runtime = backend.build(program, seed=3)
    shape = tuple(d if isinstance(d, int) else 5 for d in model.output_types[0].shape)
    losses = []
    for _ in range(STEPS):
        xs = sample_inputs(program, model.name, BATCH, rng)
        y = sample_target(recipe.loss, (BATCH, *shape), rng)
        losses.append(runtime.train_step(xs[0], y, LR))
    state = runtime.get_optimizer_state()
    return runtime.get_weights() | {
        **{f"opt:{k}": v for k, v in state.items()},
        "losses": np.array(losses),
        "forward": runtime.forward(*xs),
    }


def dump(path: str) -> None:
    out = {}
    for example in EXAMPLES:
        out |= {f"{example}/{k}": v for k, v in trained(example).items()}
        print(example, "trained", flush=True)
    np.savez(path, **out)


def compare(before_path: str, after_path: str) -> None:
    before, after = np.load(before_path), np.load(after_path)
    assert sorted(before.files) == sorted(after.files), set(before.files) ^ set(after.files)
    for example in EXAMPLES:
        keys = [k for k in before.files if k.startswith(f"{example}/")]
        same = all(np.array_equal(before[k], after[k]) for k in keys)
        worst, where = 0.0, ""
        for k in keys:
            a, b = before[k].astype(np.float64), after[k].astype(np.float64)
            scale = max(1.0, float(np.max(np.abs(a), initial=0.0)))
            d = float(np.max(np.abs(a - b), initial=0.0)) / scale
            if d > worst:
                worst, where = d, k
        print(f"{example:18s} bitwise={same} worst relative deviation {worst:.3g} {where}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["dump"]:
        dump(sys.argv[2])
    else:
        compare(sys.argv[2], sys.argv[3])
