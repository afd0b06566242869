"""Sampling text from a causal language model: the same seed, the same text everywhere."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc.data.text import Vocabulary
from nnc.errors import DataError, RecipeError
from nnc.ir.weights import init_weights, save_safetensors
from nnc.train.generate import generate, generate_trained
from tests.conftest import require, run_nnc

TEXT = "the cat sat on the mat.\nthe hat sat on the cat.\n" * 4


def tiny(tmp_path: Path, causal: str = "true") -> nnc.Program:
    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    source = textwrap.dedent(
        f"""
        model Tiny {{
            input tokens: int64[6]
            x = tokens |> embedding(12, 8) |> learned_positions(6)
            x = x |> attention(2, causal = {causal})
            output x |> dense(12)
        }}
        train Tiny {{
            data text("t.txt")
            loss cross_entropy
            seed 3
        }}
        """
    )
    (tmp_path / "tiny.nn").write_text(source, encoding="utf-8")
    return nnc.load(tmp_path / "tiny.nn")


def sharp_weights(program: nnc.Program) -> dict[str, np.ndarray]:
    """Initial weights scaled up, so that the next-character distributions are far
    from uniform and the draws depend on the model."""
    return {k: v * 3.0 for k, v in init_weights(program, "Tiny", seed=3).items()}


def test_the_same_seed_gives_the_same_text_on_every_backend(tmp_path: Path) -> None:
    for framework in ("torch", "tensorflow"):
        require(framework)
    program = tiny(tmp_path)
    weights = sharp_weights(program)
    texts = {
        backend: generate_trained(
            program,
            program.recipes["Tiny"],
            weights,
            30,
            prompt="the ",
            temperature=0.9,
            seed=11,
            backend=backend,
            base=tmp_path,
        )
        for backend in ("numpy", "torch", "tensorflow")
    }
    prompt, text = texts["numpy"]
    assert prompt == "the " and len(text) == 30 and set(text) <= set(TEXT)
    assert texts["torch"] == texts["numpy"] == texts["tensorflow"]
    other = generate_trained(
        program, program.recipes["Tiny"], weights, 30, prompt="the ", seed=12, base=tmp_path
    )
    assert other[1] != text  # another seed, another text (12 classes, 30 draws)


def test_draws_follow_the_tempered_softmax() -> None:
    """With fixed scores s, 4,000 draws at T = 0.5 land on each class with frequency
    exp(2 s_k) / Σ exp(2 s_j) within 4 standard errors; T = 0 takes the arg-max."""
    v = Vocabulary("abcd")
    scores = np.array([1.0, 0.0, -1.0, 0.5], np.float32)

    def forward(x: np.ndarray) -> np.ndarray:
        return np.tile(scores, (1, x.shape[1], 1))

    text = generate(forward, v, 3, 4000, prompt="a", temperature=0.5, seed=0)
    counts = np.array([text.count(c) for c in "abcd"])
    p = np.exp(2 * scores.astype(np.float64)) / np.exp(2 * scores.astype(np.float64)).sum()
    error = np.sqrt(p * (1 - p) / 4000)
    assert np.all(np.abs(counts / 4000 - p) < 4 * error), (counts / 4000, p)
    assert generate(forward, v, 3, 5, prompt="a", temperature=0.0, seed=0) == "aaaaa"


def test_generation_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    program = tiny(tmp_path, causal="false")
    weights = sharp_weights(program)
    recipe = program.recipes["Tiny"]
    with pytest.raises(DataError, match=r"model 'Tiny' is not causal: its output at position 0"):
        generate_trained(program, recipe, weights, 5, base=tmp_path)
    program = tiny(tmp_path)
    with pytest.raises(DataError, match=r"character 'z' \(U\+007A\) is not in the vocabulary"):
        generate_trained(program, recipe, weights, 5, prompt="zebra", base=tmp_path)
    digits = nnc.load(Path(__file__).parents[2] / "examples" / "digits_mlp.nn")
    with pytest.raises(RecipeError, match="--generate samples text from a language model"):
        generate_trained(digits, next(iter(digits.recipes.values())), {}, 5)


def test_nnc_predict_generate(tmp_path: Path) -> None:
    program = tiny(tmp_path)
    save_safetensors(tmp_path / "w.safetensors", sharp_weights(program))
    argv = ["predict", str(tmp_path / "tiny.nn"), "-w", str(tmp_path / "w.safetensors")]
    shown = run_nnc(*argv, "--generate", "30", "--prompt", "the c", "--seed", "4")
    assert shown.returncode == 0, shown.stderr
    expected = generate_trained(
        program,
        program.recipes["Tiny"],
        sharp_weights(program),
        30,
        prompt="the c",
        seed=4,
        base=tmp_path,
    )
    sample = "".join(expected)
    assert shown.stdout == sample + ("" if sample.endswith("\n") else "\n")
    written = run_nnc(
        *argv, "--generate", "30", "--prompt", "the c", "--seed", "4", "-o", str(tmp_path / "s.txt")
    )
    assert written.returncode == 0, written.stderr
    assert (tmp_path / "s.txt").read_text(encoding="utf-8") == sample
    usage = run_nnc(*argv, "--generate", "3", "--temperature", "-1")
    assert usage.returncode == 2 and "--temperature must be 0 or more" in usage.stderr
    missing = run_nnc(*argv)
    assert missing.returncode == 2 and "--input and -o/--output are required" in missing.stderr
