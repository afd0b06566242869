"""Sampling text from a trained causal language model (``nnc predict --generate N``).

The model reads windows ``int64[L]`` of class numbers and outputs ``[L, V]`` scores,
the one at position ``p`` predicting the character after position ``p`` from
positions ``0..p`` only (a causal model, such as examples/char_transformer.nn). Each
step encodes the text so far, keeps its last ``L`` characters, pads the window after
them with class 0 (which a causal model does not read at the position used), and
reads the scores ``s`` at the last real position. With temperature ``T > 0`` the next
class is drawn from ``softmax(s / T)`` by inverse transform with a uniform ``u`` from
``numpy.random.default_rng(seed)``: the smallest ``k`` with ``u · Σ_j w_j < Σ_{j≤k}
w_j`` (``w = exp(s/T - max)``, in float64). The uniforms are NumPy's whatever the
backend, so the same seed gives the same text on every backend (barring a ``u`` that
falls within float32 noise of a boundary). ``T = 0`` takes the arg-max (ties: the
lowest class).

>>> import numpy as np
>>> from nnc.data.text import Vocabulary
>>> v = Vocabulary.of_text("ab")
>>> def always_b(x):  # scores preferring 'b' at every position
...     return np.tile(np.array([0.0, 5.0], np.float32), (len(x), x.shape[1], 1))
>>> generate(always_b, v, 4, 3, prompt="a", temperature=0.0, seed=0)
'bbb'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nnc.data.text import Vocabulary
from nnc.errors import DataError, RecipeError
from nnc.ir.training import CrossEntropy, TextData

if TYPE_CHECKING:
    from nnc.ir.program import Program
    from nnc.ir.training import Recipe
    from nnc.train.run import BuildFn

Forward = Callable[[np.ndarray], np.ndarray]

# How far the outputs before the last position may move when only the last input
# changes, relative to the largest output, for a model to count as causal.
CAUSAL_TOLERANCE = 1e-4


def default_prompt(vocabulary: Vocabulary) -> str:
    """A newline when the vocabulary has one (a text then starts as after a line),
    else its first character."""
    return "\n" if "\n" in vocabulary.characters else vocabulary.characters[0]


def check_causal(forward: Forward, length: int, classes: int, model: str = "the model") -> None:
    """A DataError unless the outputs at positions ``0..L-2`` ignore the input at
    ``L-1``: generation reads position ``p`` of a window padded after ``p``."""
    if length < 2:
        return
    rng = np.random.default_rng(0)
    a = rng.integers(0, classes, (1, length))
    b = a.copy()
    b[0, -1] = (a[0, -1] + 1) % classes
    ya, yb = np.asarray(forward(a), np.float64), np.asarray(forward(b), np.float64)
    scale = max(float(np.abs(ya).max()), 1e-12)
    moved = np.abs(ya[0, :-1] - yb[0, :-1]).max(axis=-1) / scale
    if (moved > CAUSAL_TOLERANCE).any():
        first = int(np.argmax(moved > CAUSAL_TOLERANCE))
        raise DataError(
            f"{model} is not causal: its output at position {first} changes with the input "
            f"at position {length - 1}; --generate needs a model whose output at position p "
            "reads positions 0..p only",
            hint="use attention(..., causal = true) or the library's causal_layer",
        )


def generate(
    forward: Forward,
    vocabulary: Vocabulary,
    length: int,
    count: int,
    *,
    prompt: str,
    temperature: float = 1.0,
    seed: int = 0,
    from_logits: bool = True,
) -> str:
    """``count`` characters sampled after ``prompt`` (see the module docstring).

    ``forward`` maps windows ``[1, length]`` (int64) to scores ``[1, length, V]``:
    logits, or probabilities when ``from_logits`` is false (the model ends in softmax).
    """
    if temperature < 0 or not np.isfinite(temperature):
        raise DataError(f"the temperature must be 0 or more. Received: {temperature:g}")
    if not prompt:
        raise DataError("the prompt is empty; generation starts from at least one character")
    context = [int(i) for i in vocabulary.encode(prompt, "--prompt")]
    uniforms = np.random.default_rng(seed).random(count)
    window = np.zeros((1, length), dtype=np.int64)
    for u in uniforms:
        recent = context[-length:]
        window[:] = 0
        window[0, : len(recent)] = recent
        scores = np.asarray(forward(window), dtype=np.float64)[0, len(recent) - 1]
        if not from_logits:
            scores = np.log(np.maximum(scores, np.finfo(np.float64).tiny))
        context.append(_choose(scores, temperature, float(u)))
    return vocabulary.decode(context[len(context) - count :]) if count else ""


def _choose(scores: np.ndarray, temperature: float, u: float) -> int:
    if not np.isfinite(scores).all():
        raise DataError("the model's scores are not finite; nothing can be sampled")
    if temperature == 0:
        return int(np.argmax(scores))
    z = scores / temperature
    weights = np.exp(z - z.max())
    cdf = np.cumsum(weights)
    return min(int(np.searchsorted(cdf, u * cdf[-1], side="right")), len(cdf) - 1)


def generate_trained(
    program: Program,
    recipe: Recipe,
    weights: Mapping[str, np.ndarray],
    count: int,
    *,
    prompt: str | None = None,
    temperature: float = 1.0,
    seed: int = 0,
    backend: str = "numpy",
    device: str | None = None,
    base: Path | None = None,
    build: BuildFn | None = None,
) -> tuple[str, str]:
    """The prompt and ``count`` characters sampled from the model of ``recipe``, a
    language model on text (``data text(...)``), with trained ``weights``. The
    vocabulary is the recipe's (read again from its data)."""
    from nnc.data.preparation import check_vocabulary, text_window
    from nnc.data.text import vocabulary_of
    from nnc.ir.weights import check_weights
    from nnc.train.run import build_runtime

    if not isinstance(recipe.data, TextData):
        raise RecipeError(
            f"--generate samples text from a language model; recipe '{recipe.name}' trains "
            "on other data (a language model trains on data text(...))",
            recipe.span_of("data"),
        )
    model = program.models[recipe.model]
    length = text_window(model.inputs[0].type, recipe.data)
    vocabulary = vocabulary_of(recipe.data, base)
    check_vocabulary(model.output_types[0], length, len(vocabulary), recipe.data, recipe)
    checked = check_weights(program, model, dict(weights))
    runtime = build_runtime(program, model.name, backend, checked, recipe.seed, device, build)

    def forward(x: np.ndarray) -> np.ndarray:
        return np.asarray(runtime.forward(x))

    check_causal(forward, length, len(vocabulary), f"model '{model.name}'")
    loss = recipe.loss
    from_logits = loss.from_logits if isinstance(loss, CrossEntropy) else True
    start = default_prompt(vocabulary) if prompt is None else prompt
    text = generate(
        forward,
        vocabulary,
        length,
        count,
        prompt=start,
        temperature=temperature,
        seed=seed,
        from_logits=from_logits,
    )
    return start, text
