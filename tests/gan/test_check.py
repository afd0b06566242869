"""Bad GAN and autoencoder recipes are refused by ``nnc check``: a RecipeError with
the message, the line and column of the setting at fault, and the source line."""

from __future__ import annotations

from pathlib import Path

import pytest

import nnc
from nnc.errors import RecipeError
from tests.conftest import run_nnc

GAN = """model G {{
    input z: [{noise_input}]
    dense({pixels}) tanh
}}

model D {{
    input pixels: [{pixels}]
    dense(16) leaky_relu(0.2)
    dense({scores})
}}

train Gan {{
    generator     G
    discriminator D
    data          digits, scale = symmetric
    noise         normal, {noise}
}}
"""

AUTOENCODER = """model Encoder {
    input pixels: [64]
    dense(8) relu
}

model Decoder {
    input code: [8]
    dense(32) sigmoid
}

model Autoencoder {
    input pixels: [64]
    Encoder
    Decoder
}

train Autoencoder {
    data   digits, scale = unit
    target input
    loss   mse
}
"""


def gan(noise_input: int = 16, pixels: int = 64, scores: int = 1, noise: int = 16) -> str:
    return GAN.format(noise_input=noise_input, pixels=pixels, scores=scores, noise=noise)


# name: (source, line, column, message)
CASES = {
    "discriminator_outputs_two_scores": (
        gan(scores=2),
        14,
        5,
        "discriminator 'D' must output one score per sample ([1]). Received: [2]",
    ),
    "generator_output_differs_from_the_data": (
        gan(pixels=49),
        13,
        5,
        "generator 'G' must output samples like those of dataset 'digits', [64] (64 values). "
        "Received: [49] (49 values)",
    ),
    "noise_size_differs_from_the_generator_input": (
        gan(noise=8),
        16,
        5,
        "the noise must fit generator 'G', which takes [16]: expected noise size 16. "
        "Received: noise normal, 8",
    ),
    "decoder_output_differs_from_the_input": (
        AUTOENCODER,
        19,
        5,
        "autoencoder 'Autoencoder' reconstructs its input, so the output of 'Autoencoder' "
        "must be [64] like its input. Received: [32] (from Decoder)",
    ),
    "frozen_discriminator": (
        gan()
        .replace("dense(1)", "dense(1, trainable = false)")
        .replace("dense(16) leaky_relu(0.2)", "dense(16, trainable = false) leaky_relu(0.2)"),
        14,
        5,
        "discriminator 'D' has no trainable parameters; a GAN trains both models",
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_bad_recipe_is_refused_with_line_and_column(name: str) -> None:
    source, line, col, message = CASES[name]
    with pytest.raises(RecipeError) as info:
        nnc.parse(source, "bad.nn")
    assert info.value.message == message
    assert info.value.span is not None
    assert (info.value.span.line, info.value.span.col) == (line, col)


def test_the_good_recipes_pass() -> None:
    assert nnc.parse(gan(), "good.nn").recipes["Gan"].kind == "gan"
    fixed = AUTOENCODER.replace("dense(32) sigmoid", "dense(64) sigmoid")
    assert nnc.parse(fixed, "good.nn").recipes["Autoencoder"].target == "input"


def test_nnc_check_shows_the_place(tmp_path: Path) -> None:
    path = tmp_path / "bad.nn"
    path.write_text(gan(scores=2), encoding="utf-8")
    result = run_nnc("check", str(path))
    assert result.returncode == 1
    assert f"{path}:14:5: error: discriminator 'D' must output one score per sample" in (
        result.stderr
    )
    assert "   14 |     discriminator D\n      |     ^^^^^^^^^^^^^^^" in result.stderr
    assert "hint: end the discriminator with dense(1) (a logit) or dense(1) sigmoid" in (
        result.stderr
    )
