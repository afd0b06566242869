"""onnxruntime behind nnc's Runtime interface, and running a standalone ``.onnx`` file.

The onnx backend is for inference: ``forward`` runs the exported graph, and
``set_weights`` re-exports the model with the new weights and opens a new session.
Training needs gradients, which an inference graph does not have, so the training
methods raise a :class:`~nnc.errors.BackendError` that says where to train instead.
``loss`` evaluates the recipe's loss on the graph's outputs with NumPy, so ``nnc
eval`` runs on onnx too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from nnc.errors import BackendError, DataError
from nnc.ir.program import Model, Program
from nnc.ir.types import TensorType, format_shape

INFERENCE_ONLY = (
    "the onnx backend is inference-only: it cannot {what}. Train with the numpy, torch "
    "or tensorflow backend, save the weights, and export them (nnc export --weights)"
)


def open_session(model_bytes: bytes, threads: int | None = None) -> Any:
    """An onnxruntime CPU session for a serialized model; failures are BackendErrors."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4  # errors reach the caller as exceptions, not as logs
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(
            model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own exception types
        raise BackendError(f"onnxruntime cannot load the model: {_one_line(exc)}") from None


def run_session(session: Any, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Run a session; onnxruntime's errors (shapes, dtypes) become DataErrors."""
    try:
        return [np.asarray(o) for o in session.run(None, dict(feeds))]
    except Exception as exc:
        raise DataError(f"onnxruntime could not run the model: {_one_line(exc)}") from None


def _one_line(exc: Exception) -> str:
    """onnxruntime's message on one line (its details follow a line break)."""
    text = " ".join(str(exc).split())
    return text[:500] if text else type(exc).__name__


class OnnxRuntime:
    """An exported nnc model running in onnxruntime (inference only). ``export`` is
    the backend's ``emit`` (program, model name, weights, opset -> ModelProto bytes),
    called again whenever the weights change."""

    backend = "onnx"

    def __init__(
        self,
        program: Program,
        model: Model,
        weights: Mapping[str, np.ndarray],
        *,
        opset: int,
        export: Callable[..., bytes],
        threads: int | None = None,
    ):
        self.program = program
        self._export = export
        self.model = model
        self.opset = opset
        self.threads = threads
        self._weights = {k: np.array(v, dtype=np.float32) for k, v in weights.items()}
        self._open()

    def _open(self) -> None:
        data = self._export(self.program, self.model.name, weights=self._weights, opset=self.opset)
        self.session = open_session(data, self.threads)

    def forward(self, *inputs: np.ndarray, training: bool = False) -> Any:
        """The model's outputs for a batch: one array, or a tuple for several outputs."""
        if training:
            raise BackendError(INFERENCE_ONLY.format(what="run in training mode"))
        declared = self.model.inputs
        if len(inputs) != len(declared):
            raise DataError(
                f"model '{self.model.name}' takes {len(declared)} input(s). Received: {len(inputs)}"
            )
        feeds = {
            d.name: _as_input(x, d.name, d.type) for d, x in zip(declared, inputs, strict=True)
        }
        outputs = run_session(self.session, feeds)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def get_weights(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self._weights.items()}

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        """Replace the weights (all of them, checked) and rebuild the session."""
        from nnc.ir.weights import check_weights

        self._weights = check_weights(self.program, self.model, weights)
        self._open()

    def seed(self, seed: int) -> None:
        """Nothing to seed: an inference graph draws no random numbers."""

    def train_step(self, x: np.ndarray, y: np.ndarray, lr: float) -> float:
        raise BackendError(INFERENCE_ONLY.format(what="train"))

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """The recipe's loss of the exported graph's outputs, in evaluation mode, by the
        NumPy backend's loss kernels (the formulas of docs/semantics.md): what ``nnc
        eval`` reports on every backend."""
        from nnc.backends import codegen
        from nnc.backends.numpy.kernels import losses
        from nnc.backends.numpy.kernels.core import as_padded_target, as_target
        from nnc.backends.numpy.training import loss_kernel, loss_options, training_setup
        from nnc.ir.training import CrossEntropy

        _, recipe = codegen.select(self.program, self.model.name)
        loss = training_setup(self.model, recipe).loss
        if loss is None:
            raise BackendError(
                f"model {self.model.name} has no loss: no train recipe trains it on targets"
            )
        output = np.asarray(self.forward(x), dtype=np.float64)
        if isinstance(loss, CrossEntropy) and loss.ignore is not None:
            target = as_padded_target(y, output, loss.ignore)
        else:
            target = as_target(y, output, class_labels=isinstance(loss, CrossEntropy))
        value, _ = getattr(losses, loss_kernel(loss))(output, target, **loss_options(loss))
        return float(value)

    def gradients(self, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        raise BackendError(INFERENCE_ONLY.format(what="compute gradients"))

    def get_optimizer_state(self) -> dict[str, np.ndarray]:
        raise BackendError(INFERENCE_ONLY.format(what="hold optimizer state"))

    def set_optimizer_state(self, state: Mapping[str, np.ndarray]) -> None:
        raise BackendError(INFERENCE_ONLY.format(what="hold optimizer state"))


def _as_input(x: np.ndarray, name: str, t: TensorType) -> np.ndarray:
    """A batch for input ``name``: the declared dtype and rank, else a DataError."""
    array = np.asarray(x)
    if array.ndim != t.rank + 1:
        raise DataError(
            f"input '{name}' takes batches of {format_shape(t.shape)} samples "
            f"(rank {t.rank + 1} with the batch). Received: shape {list(array.shape)}"
        )
    want = np.int64 if t.dtype == "int64" else np.float32
    if t.dtype == "int64" and not np.issubdtype(array.dtype, np.integer):
        raise DataError(f"input '{name}' takes int64 indices. Received: dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=want)


def match_inputs(
    session_inputs: Sequence[Any], arrays: Mapping[str, np.ndarray], source: str
) -> dict[str, np.ndarray]:
    """Pair arrays with a session's graph inputs: by name, or the single array ``x``
    (or the only/first array) for a one-input graph. Samples of another shape with
    the same number of values (digits' ``[64]`` for a ``[1, 8, 8]`` input) are
    reshaped, as ``nnc predict`` does."""
    names = [i.name for i in session_inputs]
    if all(n in arrays for n in names):
        chosen = {n: arrays[n] for n in names}
    elif len(names) == 1 and arrays:
        key = "x" if "x" in arrays else next(iter(arrays))
        chosen = {names[0]: arrays[key]}
    else:
        missing = [n for n in names if n not in arrays]
        raise DataError(
            f"{source} has no array for graph input(s) {', '.join(missing)}. "
            f"Received arrays: {', '.join(arrays) or 'none'}; name each array after its input"
        )
    feeds = {}
    for info in session_inputs:
        want = np.int64 if "int64" in info.type else np.float32
        value = np.asarray(chosen[info.name])
        if want is np.int64 and not np.issubdtype(value.dtype, np.integer):
            raise DataError(
                f"graph input '{info.name}' takes int64 indices. Received: {value.dtype}"
            )
        sample = info.shape[1:]
        if (
            value.ndim >= 1
            and all(isinstance(d, int) for d in sample)
            and tuple(value.shape[1:]) != tuple(sample)
            and math.prod(value.shape[1:]) == math.prod(sample)
        ):
            value = value.reshape(len(value), *sample)
        feeds[info.name] = np.ascontiguousarray(value, dtype=want)
    return feeds
