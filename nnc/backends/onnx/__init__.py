"""The ONNX backend: export a model with its weights as an ONNX ModelProto, run it
in onnxruntime, and import ONNX models back into nnc's IR.

- :func:`emit` builds the ModelProto from the checked IR with ``onnx.helper`` (it
  needs the ``onnx`` package, imported only when it runs; never onnxruntime);
- :func:`build` gives an inference-only :class:`~nnc.backends.runtime.Runtime` on
  onnxruntime;
- :func:`import_model` turns an ONNX file into a Program and canonical weights.

The per-op conversions are listed in ``docs/backends/onnx.md``.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from nnc.backends.onnx.preprocessing import preprocessing
from nnc.errors import BackendError
from nnc.ir.program import Model, Program

if TYPE_CHECKING:
    from nnc.backends.onnx.importer import Imported
    from nnc.backends.onnx.runtime import OnnxRuntime

NAME = "onnx"
DEFAULT_OPSET = 17
MIN_OPSET = 11  # the oldest opset deployment targets still ask for; every op lowers to it


class RunWeights(Protocol):
    """Weights read from a run by :func:`nnc.train.inference.load_trained` (a weights
    file, checkpoint or run folder): the canonical weights, where they came from, and
    the run's input standardisation (an object with ``mean`` and ``std``, or None).
    The backend takes them read: it never reads run folders itself."""

    @property
    def weights(self) -> Mapping[str, np.ndarray]: ...

    @property
    def source(self) -> Path: ...

    @property
    def standardizer(self) -> Any: ...


WeightsArg = Mapping[str, np.ndarray] | RunWeights | None


def emit(
    program: Program,
    model: str | None = None,
    source: str = "<program>",
    weights: WeightsArg = None,
    opset: int = DEFAULT_OPSET,
    preprocess: bool = False,
) -> bytes:
    """The model as a serialized ONNX ModelProto, with canonical weights.

    ``weights``: None for the initial weights drawn from the recipe's seed (0 without
    a recipe), a mapping of canonical weights, or the :class:`RunWeights` read from a
    weights file (safetensors, or an earlier nnc's ``.npz``), a training checkpoint or
    a run folder (``nnc.emit`` and ``nnc export`` read a path so). The graph takes the
    model's inputs as the model sees them, as every backend's compiled model does. With
    ``preprocess`` (what ``nnc export`` does) it takes raw samples, as ``nnc predict``
    does: it applies the recipe's ``scale`` and ``upscale`` of a built-in set and, when
    the weights come with the run's input standardisation (``standardize true``),
    ``(x - mean) / std``; the graph's input then has the raw samples' shape.
    The result passes ``onnx.checker.check_model(full_check=True)``; the same inputs
    always give the same bytes.
    """
    _require("onnx")
    from nnc.backends.onnx.graph import export_model

    program, chosen = _prepare(program, model)
    check_opset(opset)
    resolved = resolve_weights(program, chosen, weights)
    pre = preprocessing(program, chosen, resolved.standardize) if preprocess else None
    flat = _flat(program, chosen)
    proto = export_model(program, chosen, flat, resolved.weights, opset, source, pre)
    return proto.SerializeToString()


def build(
    program: Program,
    model: str | None = None,
    weights: WeightsArg = None,
    *,
    opset: int = DEFAULT_OPSET,
    threads: int | None = None,
    **options: Any,
) -> OnnxRuntime:
    """An onnxruntime session for the exported model, behind the Runtime interface.

    Inference only: ``forward``, ``get_weights`` and ``set_weights`` (which rebuilds
    the session) work; training methods raise :class:`~nnc.errors.BackendError`.
    ``threads`` caps onnxruntime's intra-op threads (default: its own choice).
    """
    if options:
        raise BackendError(
            f"the onnx backend takes the options opset and threads. Received: {', '.join(options)}"
        )
    _require("onnx")
    _require("onnxruntime")
    from nnc.backends.onnx.runtime import OnnxRuntime

    program, chosen = _prepare(program, model)
    check_opset(opset)
    # Like every backend's runtime, this one runs the bare model (no standardisation).
    canonical = resolve_weights(program, chosen, weights).weights
    return OnnxRuntime(program, chosen, canonical, opset=opset, export=emit, threads=threads)


def import_model(data: bytes | str | Path, name: str | None = None) -> Imported:
    """Import an ONNX model (a file or its bytes) as a checked Program and canonical
    weights; see :mod:`nnc.backends.onnx.importer`."""
    _require("onnx")
    from nnc.backends.onnx.importing import import_onnx

    return import_onnx(data, name)


def check_opset(opset: int) -> None:
    """Refuse opsets the exporter does not target or ``onnx`` does not know."""
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise BackendError(
            f"the onnx backend exports opsets {MIN_OPSET} to {newest} "
            f"(onnx {onnx.__version__}). Received: {opset!r}"
        )


@dataclass
class Resolved:
    """Canonical weights, and the input standardisation ``(mean, std)`` of their run."""

    weights: dict[str, np.ndarray]
    standardize: tuple[np.ndarray, np.ndarray] | None = None


def resolve_weights(program: Program, model: Model, weights: WeightsArg) -> Resolved:
    """Canonical float32 weights: drawn from the recipe's seed, checked, or loaded
    from a weights file, checkpoint or run folder (with the run's standardisation)."""
    from nnc.ir.weights import check_weights, find_model_weights, init_weights

    if weights is None:
        recipe = next((r for r in program.recipes.values() if model.name in r.models), None)
        return Resolved(init_weights(program, model, seed=recipe.seed if recipe is not None else 0))
    if isinstance(weights, str | Path):
        raise BackendError(
            f"the onnx backend takes weights as arrays or as read from a run. Received: "
            f"the path {str(weights)!r}",
            hint="read it with nnc.train.inference.load_trained(path), as nnc export does",
        )
    if not isinstance(weights, Mapping):
        trained = weights
        source = str(trained.source)
        found = find_model_weights(program, model, trained.weights, source)
        checked = check_weights(program, model, found.weights, source=source)
        stats = trained.standardizer
        if stats is not None and not _reads_root_input(program, found.root, found.prefix):
            warnings.warn(
                f"the run standardised the inputs of '{found.root}', which '{model.name}' does "
                "not read; the exported graph takes its inputs as they are",
                stacklevel=2,
            )
            stats = None
        return Resolved(checked, None if stats is None else (stats.mean, stats.std))
    found = find_model_weights(program, model, weights)
    return Resolved(check_weights(program, model, found.weights))


def _reads_root_input(program: Program, root: str, prefix: str) -> bool:
    """Whether the use of a model at ``prefix`` inside ``root`` takes ``root``'s input
    itself: the model is ``root``, or a call in ``root`` of it on ``root``'s inputs."""
    if prefix == "":
        return True
    call, _, rest = prefix.partition(".")
    if rest or "/" in call:
        return False
    m = program.models[root]
    node = next((n for n in m.nodes if n.name == call), None)
    return node is not None and list(node.inputs) == [i.name for i in m.inputs]


def _prepare(program: Program, model: str | None) -> tuple[Program, Model]:
    from nnc.backends.codegen import checked, select

    program = checked(program)
    chosen, _ = select(program, model)
    return program, chosen


def _flat(program: Program, model: Model) -> Model:
    from nnc.ir.passes import inline_calls

    return inline_calls(program, model)


def _require(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise BackendError(
            f"the onnx backend needs {module}, which is not installed",
            hint="pip install 'nnc[onnx]'",
        )


__all__ = ["DEFAULT_OPSET", "NAME", "build", "check_opset", "emit", "import_model"]
