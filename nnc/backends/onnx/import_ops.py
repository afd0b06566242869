"""The table of ONNX op converters and multi-node patterns used by the importer."""

from __future__ import annotations

from nnc.backends.onnx import (
    import_arith,
    import_attention,
    import_layers,
    import_layout,
    import_maths,
    import_recurrent,
    import_resample,
    import_views,
)
from nnc.backends.onnx.import_patterns import PATTERNS
from nnc.backends.onnx.importer import Converter

CONVERTERS: dict[str, Converter] = {
    **import_layers.CONVERTERS,
    **import_views.CONVERTERS,
    **import_recurrent.CONVERTERS,
    **import_maths.CONVERTERS,
    **import_resample.CONVERTERS,
    **import_layout.CONVERTERS,
    **import_arith.CONVERTERS,  # after import_layers: its Add/Sum broadcast
}

for _op, _patterns in import_maths.PATTERNS.items():
    PATTERNS.setdefault(_op, []).extend(_patterns)
PATTERNS.setdefault("MatMul", []).extend(
    [import_attention.attention, import_attention.per_position]
)
for _op in ("LayerNormalization", "ReduceMean", "Add", "Sub", "Mul", "Div", "Pow"):
    PATTERNS.setdefault(_op, []).append(import_attention.per_position)

__all__ = ["CONVERTERS", "PATTERNS"]
