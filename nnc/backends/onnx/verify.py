"""Check an import numerically: the original ONNX model and the imported nnc model,
both in onnxruntime, on the same random batch.

``nnc import`` runs this before writing anything, so a conversion that changed what
the model computes is an error rather than a file. The batch has the size the
original declares (a model exported with a fixed batch of 1 gets one sample), and an
original that the installed onnxruntime cannot run (an old opset it no longer
implements) is first converted with onnx's version converter; where neither runs,
the import goes on and says that it was not compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nnc.backends.onnx.importer import Imported
from nnc.backends.onnx.runtime import open_session, run_session
from nnc.errors import BackendError

BATCH = 4  # when the original leaves the batch free
SYMBOL_SIZE = 5  # every symbolic dim but the batch
TOLERANCE = 1e-4  # relative to the largest output value, float32 throughout
CONVERT_TO = 17  # the opset an original onnxruntime cannot run is converted to


@dataclass(frozen=True)
class SelfCheck:
    """What the check found: the deviation (None when the original could not run)
    and the line ``nnc import`` prints about it."""

    deviation: float | None
    summary: str


def self_check(original: bytes, imported: Imported) -> SelfCheck:
    """Compare the import with the original, converting the original's opset if the
    installed onnxruntime cannot run it; raises a BackendError above ``TOLERANCE``."""
    how = ""
    try:
        session = open_session(original, threads=1)
    except BackendError as refused:
        model = imported.program.models[imported.model]
        axes = [imported.batch_axes.get(i.name, 0) for i in model.inputs]
        converted, old = _converted(original, axes)
        if converted is None:
            return SelfCheck(None, f"not compared with the original: {refused.message}")
        try:
            session = open_session(converted, threads=1)
        except BackendError as again:
            return SelfCheck(
                None,
                f"not compared with the original: {refused.message}; converted from opset "
                f"{old} to {CONVERT_TO}, {again.message}",
            )
        how = (
            f"; the original's opset {old} converted to {CONVERT_TO} with onnx's version "
            "converter, since the installed onnxruntime cannot run it"
        )
    deviation, batch = _compare(session, imported)
    return SelfCheck(
        deviation,
        f"checked: the same outputs as the original in onnxruntime on a random batch of "
        f"{batch} (relative deviation {deviation:.1e}){how}",
    )


def compare_with_original(original: bytes, imported: Imported, seed: int = 0) -> float:
    """The largest deviation between the two models' outputs, relative to the largest
    output value (at least 1). Raises a BackendError above ``TOLERANCE``."""
    return _compare(open_session(original, threads=1), imported, seed)[0]


def _compare(session: Any, imported: Imported, seed: int = 0) -> tuple[float, int]:
    from nnc.backends.onnx import build

    rng = np.random.default_rng(seed)
    model = imported.program.models[imported.model]
    pairs = list(zip(session.get_inputs(), model.inputs, strict=True))
    batch = next(
        (
            g.shape[imported.batch_axes.get(d.name, 0)]
            for g, d in pairs
            if isinstance(g.shape[imported.batch_axes.get(d.name, 0)], int)
            and g.shape[imported.batch_axes.get(d.name, 0)] > 0
        ),
        BATCH,
    )
    feeds: dict[str, np.ndarray] = {}
    inputs = []
    for graph_input, declared in pairs:
        axis = imported.batch_axes.get(declared.name, 0)
        sample = [d if isinstance(d, int) else SYMBOL_SIZE for d in declared.type.shape]
        if declared.type.dtype == "int64":
            values = np.zeros((batch, *sample), dtype=np.int64)  # index 0 is always valid
        else:
            values = rng.normal(size=(batch, *sample)).astype(np.float32)
        inputs.append(values)
        feed = np.ascontiguousarray(np.moveaxis(values, 0, axis))
        # A float64 original (imported in float32) gets the same values in float64.
        feeds[graph_input.name] = (
            feed.astype(np.float64) if graph_input.type == "tensor(double)" else feed
        )
    want = run_session(session, feeds)
    want = [np.moveaxis(w, imported.output_batch_axes.get(k, 0), 0) for k, w in enumerate(want)]
    if imported.standardize is not None:  # the nnc model takes standardised data
        mean, std = imported.standardize
        inputs = [((inputs[0] - mean) / std).astype(np.float32)]
    runtime = build(imported.program, imported.model, imported.weights, threads=1)
    result = runtime.forward(*inputs)
    got = list(result) if isinstance(result, tuple) else [result]
    scale = max(1.0, *(float(np.abs(w).max()) for w in want if w.size))
    deviation = max(
        float(np.abs(g.astype(np.float64) - w).max()) if w.size else 0.0
        for g, w in zip(got, want, strict=True)
    )
    if deviation / scale > TOLERANCE:
        raise BackendError(
            f"the imported model does not compute what the ONNX model does: outputs differ "
            f"by up to {deviation:.3g} on a random batch of {batch} (scale {scale:.3g}); this "
            "is a bug in nnc's importer, please report it with the model"
        )
    return deviation / scale, batch


def _converted(original: bytes, batch_axes: list[int]) -> tuple[bytes | None, int]:
    """The model converted to opset ``CONVERT_TO`` (None where the converter fails),
    and its own default-domain opset.

    The converter's adapters check broadcasting on static shapes, so the copy it
    converts has the sizes the check feeds in place of symbolic dims (``BATCH`` on
    each input's batch axis, ``SYMBOL_SIZE`` elsewhere; none is fixed in the
    declared batch), and no shapes of its own on outputs and inner values."""
    import onnx
    from onnx import version_converter

    model = onnx.load_from_string(original)
    old = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if old >= CONVERT_TO:
        return None, old
    for value, axis in zip(model.graph.input, batch_axes, strict=False):
        for k, dim in enumerate(value.type.tensor_type.shape.dim):
            if not dim.HasField("dim_value"):
                dim.dim_value = BATCH if k == axis else SYMBOL_SIZE
    for value in model.graph.output:
        value.type.tensor_type.ClearField("shape")
    del model.graph.value_info[:]
    try:
        return version_converter.convert_version(model, CONVERT_TO).SerializeToString(), old
    except Exception:  # the converter raises its own types for what it cannot convert
        return None, old
