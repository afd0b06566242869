"""Check an import numerically: the original ONNX model and the imported nnc model,
both in onnxruntime, on the same random batch.

``nnc import`` runs this before writing anything, so a conversion that changed what
the model computes is an error rather than a file.
"""

from __future__ import annotations

import numpy as np

from nnc.backends.onnx.importer import Imported
from nnc.backends.onnx.runtime import open_session, run_session
from nnc.errors import BackendError

BATCH = 4
SYMBOL_SIZE = 5  # every symbolic dim but the batch
TOLERANCE = 1e-4  # relative to the largest output value, float32 throughout


def compare_with_original(original: bytes, imported: Imported, seed: int = 0) -> float:
    """The largest deviation between the two models' outputs, relative to the largest
    output value (at least 1). Raises a BackendError above ``TOLERANCE``."""
    from nnc.backends.onnx import build

    session = open_session(original, threads=1)
    rng = np.random.default_rng(seed)
    model = imported.program.models[imported.model]
    feeds: dict[str, np.ndarray] = {}
    inputs = []
    for graph_input, declared in zip(session.get_inputs(), model.inputs, strict=True):
        axis = imported.batch_axes.get(declared.name, 0)
        sample = [d if isinstance(d, int) else SYMBOL_SIZE for d in declared.type.shape]
        if declared.type.dtype == "int64":
            batch = np.zeros((BATCH, *sample), dtype=np.int64)  # index 0 is always valid
        else:
            batch = rng.normal(size=(BATCH, *sample)).astype(np.float32)
        inputs.append(batch)
        feeds[graph_input.name] = np.ascontiguousarray(np.moveaxis(batch, 0, axis))
    want = run_session(session, feeds)
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
            f"by up to {deviation:.3g} on a random batch (scale {scale:.3g}); this is a bug "
            "in nnc's importer, please report it with the model"
        )
    return deviation / scale
