"""Every backend learns the examples' tasks, with their recipes' seeds.

These are the slow end of the suite (about 30 s per backend on the 2-core CI
machine): each test trains one example through the shared driver and checks a
figure that only a working network reaches.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnc
from nnc.data import preparation
from nnc.train import RunOptions, TrainResult, train
from tests.conftest import EXAMPLES, require

BACKENDS = ["numpy", "torch", "tensorflow"]
FRAMEWORK = {"numpy": "numpy", "torch": "torch", "tensorflow": "tensorflow"}


def fit(example: str, backend: str, **overrides: object) -> tuple[nnc.Program, TrainResult]:
    require(FRAMEWORK[backend])
    program = nnc.load(EXAMPLES / f"{example}.nn")
    return program, train(program, options=RunOptions(backend=backend, save=False, **overrides))  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", BACKENDS)
def test_perceptron_learns_and_without_errors(backend: str) -> None:
    _, result = fit("perceptron", backend)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    predictions = result.runtime.forward(x)[:, 0]
    assert predictions.tolist() == [0.0, 0.0, 0.0, 1.0]  # AND, zero errors
    assert result.history[-1]["loss"] == 0.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_xor_reaches_its_truth_table(backend: str) -> None:
    _, result = fit("xor", backend)
    assert result.history[-1]["loss"] < 0.01
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    assert np.round(result.runtime.forward(x)[:, 0]).tolist() == [0.0, 1.0, 1.0, 0.0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_digits_mlp_held_out_accuracy(backend: str) -> None:
    _, result = fit("digits_mlp", backend)
    assert result.final["val_accuracy"] >= 0.95  # 360 held-out digits


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_custom_layer_of_params_and_matmul_learns_digits(backend: str) -> None:
    """custom_layer.nn: two dense layers written as blocks of param and @ (2,410
    parameters, as two nn.Linear layers) reach the held-out accuracy of an MLP."""
    program, result = fit("custom_layer", backend)
    assert nnc.count_params(program, "DigitsCustom") == 64 * 32 + 32 + 32 * 10 + 10
    assert result.final["val_accuracy"] >= 0.95  # 360 held-out digits
    assert result.history[-1]["loss"] < 0.15


@pytest.mark.parametrize("backend", BACKENDS)
def test_digits_cnn_held_out_accuracy(backend: str) -> None:
    _, result = fit("digits_cnn", backend)
    assert result.final["val_accuracy"] >= 0.97


@pytest.mark.parametrize("backend", BACKENDS)
def test_lstm_predicts_the_next_sine_value(backend: str) -> None:
    """Task: 20 noisy sine samples -> sample 21. Repeating the last sample scores
    0.022 MSE on the held-out windows; the LSTM must get under 0.01 and halve it."""
    program, result = fit("sequence_lstm", backend)
    recipe = program.recipes["SineLSTM"]
    held_out = preparation.prepare(program, recipe, None).validation  # type: ignore[arg-type]
    assert held_out is not None
    naive = float(np.mean((held_out.x[:, -1, 0] - held_out.y[:, 0]) ** 2))
    assert naive == pytest.approx(0.0223, abs=5e-4)
    assert result.final["val_loss"] < 0.01
    assert result.final["val_loss"] < naive / 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_house_prices_mse_falls_a_hundredfold(backend: str) -> None:
    _, result = fit("house_prices", backend)
    first, last = result.history[0]["val_loss"], result.final["val_loss"]
    assert last < first / 100


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_per_step_rnn_trains_on_the_summed_loss(backend: str) -> None:
    """sequence_rnn_steps.nn: the loss of a batch is the sum over its sequences and
    their 24 steps. Guessing scores 1/3 per step; the held-out steps reach 0.85."""
    program, result = fit("sequence_rnn_steps", backend)
    assert program.recipes["WaveSteps"].loss.summed
    assert result.history[0]["val_accuracy"] < 0.5
    assert result.final["val_accuracy"] >= 0.85
    assert result.history[-1]["loss"] < 0.7 * result.history[0]["loss"]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_conv3d_tells_cubes_from_crosses(backend: str) -> None:
    """conv3d_small.nn on the generated volumes: guessing scores 1/2; four of the
    recipe's epochs take the 80 held-out volumes to at least 95 %."""
    _, result = fit("conv3d_small", backend, epochs=4)
    assert result.history[0]["val_accuracy"] < 0.6
    assert result.final["val_accuracy"] >= 0.95
    assert result.history[-1]["loss"] < 0.75 * result.history[0]["loss"]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_xor_from_scratch_reaches_what_its_comment_states(backend: str) -> None:
    """The texts' settings (lr 0.01, biases 0 and frozen) take the loss only from
    0.808 to 0.494; its biases stay exactly 0."""
    _, result = fit("xor_from_scratch", backend)
    assert result.history[0]["loss"] == pytest.approx(0.808, abs=1e-3)
    assert result.history[-1]["loss"] == pytest.approx(0.494, abs=1e-3)
    weights = result.runtime.get_weights()
    assert not weights["dense_1.bias"].any() and not weights["dense_2.bias"].any()


def test_xor_from_scratch_is_solved_with_trainable_biases_and_lr_half() -> None:
    """The setting its comment names: the same N(0, 1) weights, trainable biases,
    sgd(lr = 0.5)."""
    text = (EXAMPLES / "xor_from_scratch.nn").read_text()
    program = nnc.parse(text.replace(", bias_trainable = false", "").replace("0.01", "0.5"))
    result = train(program, options=RunOptions(backend="numpy", save=False))
    assert result.history[-1]["loss"] < 0.001
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    assert np.round(result.runtime.forward(x)[:, 0]).tolist() == [0.0, 1.0, 1.0, 0.0]


def _pixel_accuracy(predicted: np.ndarray, mask: np.ndarray) -> float:
    return float(np.mean((predicted > 0.5) == (mask > 0.5)))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_unet_segments_the_blobs_better_than_a_threshold(backend: str) -> None:
    """unet_blobs.nn: the best brightness threshold, even after a 3x3 mean filter,
    labels at most 0.90 of the held-out pixels right; the U-Net, with its skip
    connections and upsampling, must beat that by 0.03 (it reached 0.945 on torch)."""
    program, result = fit("unet_blobs", backend)
    held_out = preparation.prepare(program, program.recipes["UNet"], None).validation  # type: ignore[arg-type]
    assert held_out is not None
    image, mask = held_out.x[:, 0], held_out.y[:, 0]
    padded = np.pad(image, ((0, 0), (1, 1), (1, 1)), mode="edge")
    smoothed = sum(padded[:, i : i + 16, j : j + 16] for i in range(3) for j in range(3)) / 9
    best_threshold = max(
        _pixel_accuracy(smoothed - t + 0.5, mask) for t in np.linspace(0.2, 0.9, 36)
    )
    assert best_threshold < 0.90
    logits = result.runtime.forward(held_out.x)
    accuracy = _pixel_accuracy(1 / (1 + np.exp(-logits)), held_out.y)
    assert accuracy >= best_threshold + 0.03
    assert result.final["val_loss"] < 0.5 * result.history[0]["val_loss"]


def test_rbm_digits_reconstruction_error_falls_threefold() -> None:
    """CD-1 on the binarised digits (examples/rbm_digits.nn): the reconstruction error
    of epoch 20 is at least 3 times below that of epoch 1 (0.1269 -> 0.0409, 3.10x;
    0.25 before training)."""
    _, result = fit("rbm_digits", "numpy")
    errors = [row["recon_error"] for row in result.history]
    assert len(errors) == 20
    assert errors[0] / errors[-1] >= 3.0, errors
    assert (
        result.history[-1]["pseudo_log_likelihood"]
        > result.history[0]["pseudo_log_likelihood"] + 5.0
    )  # -22.4 -> -12.0 nats per sample (the first 256 digits)


def test_dbn_digits_pretrained_then_fine_tuned_reaches_093() -> None:
    """examples/dbn_digits.nn: greedy CD pretraining of rbm(32), rbm(16), then backprop
    (0.9415 on the 359 held-out digits; 0.8997 without the pretraining)."""
    _, result = fit("dbn_digits", "numpy")
    assert result.final["val_accuracy"] >= 0.93


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_squeeze_excite_cnn_held_out_accuracy(backend: str) -> None:
    """se_digits.nn: each block rescales its channels by x * reshape(s, [c, 1, 1]), a
    broadcasting product; 0.955 of the held-out digits on numpy and torch."""
    program, result = fit("se_digits", backend)
    assert [n.op for n in program.models["SEDigits"].nodes].count("mul") == 2
    assert result.final["val_accuracy"] >= 0.94


@pytest.mark.usefixtures("one_torch_thread")  # tiny matmuls: spinning threads cost 5x
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_seq_reverse_reaches_its_token_accuracy_in_two_epochs(backend: str) -> None:
    """seq_reverse.nn: the library's encoder and decoder layers reverse 5 to 8 tokens
    padded to 8. Guessing scores about 1/9 per token; two of the recipe's four epochs
    take the 400 held-out sequences to at least 0.95 token accuracy, padding left
    out (cross_entropy(ignore = 0)). The full four epochs: benchmarks/seq_reverse.py."""
    program, result = fit("seq_reverse", backend, epochs=2)
    assert program.recipes["Reverse"].loss.ignore == 0
    assert result.history[0]["loss"] > 1.5
    assert result.final["val_accuracy"] >= 0.95


@pytest.mark.usefixtures("one_torch_thread")
def test_char_transformer_falls_well_under_the_unigram_loss() -> None:
    """char_transformer.nn on the sonnets: a unigram model (the training windows'
    character frequencies) scores about 3.1 nats per character on the held-out windows;
    two of the recipe's ten epochs take the causal Transformer under three quarters of
    that (about 2.2; the full ten reach about 1.86)."""
    program, result = fit("char_transformer", "torch", epochs=2)
    data = preparation.prepare(program, program.recipes["CharTransformer"])
    assert data.validation is not None
    counts = data.train.y.sum(axis=(0, 1))
    log_p = np.log(counts / counts.sum())
    unigram = float(-(data.validation.y * log_p).sum() / data.validation.y.sum())
    assert 3.0 < unigram < 3.3
    assert result.history[0]["loss"] > 0.8 * unigram  # it starts near the unigram's loss
    assert result.final["val_loss"] < 0.75 * unigram


@pytest.mark.usefixtures("one_torch_thread")
def test_vit_digits_reaches_its_held_out_accuracy() -> None:
    """vit_digits.nn: patches by a stride-2 conv2d, two pre-norm encoder layers and a
    mean pool. Guessing scores 1/10; five of the recipe's fifteen epochs take the 359
    held-out digits to at least 0.9 (about 0.93; the full fifteen about 0.98)."""
    _, result = fit("vit_digits", "torch", epochs=5)
    assert result.history[0]["loss"] > 1.0
    assert result.final["val_accuracy"] >= 0.9
