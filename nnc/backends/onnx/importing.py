"""``import_onnx``: the importer's entry point, joining the :class:`Importer` with the
converter tables of :mod:`nnc.backends.onnx.import_ops`. Its own module so that the
converters, which build on :mod:`nnc.backends.onnx.importer`, form no circle with it."""

from __future__ import annotations

import re
from pathlib import Path

from nnc.backends.onnx.fold_shapes import fold_graph
from nnc.backends.onnx.import_ops import CONVERTERS, PATTERNS
from nnc.backends.onnx.importer import Imported, Importer, time_major_input
from nnc.backends.onnx.reader import OnnxImportError, load_graph, read_model
from nnc.ir.passes import check_identifier


def import_onnx(data: bytes | str | Path, name: str | None = None) -> Imported:
    """Import an ONNX model: a checked Program with one model, canonical weights and
    conversion notes. The model is named ``name``, else after the ONNX graph."""
    proto, source = read_model(data)
    graph = load_graph(proto, source)
    fold_graph(graph, {i.name: 1 for i in graph.inputs if time_major_input(graph, i.name)})
    importer = Importer(graph, source)
    importer.run(CONVERTERS, PATTERNS)
    model_name = name or _model_name(proto.graph.name)
    problem = check_identifier(model_name, "model name")
    if problem:
        raise OnnxImportError(problem)
    return importer.finish(model_name)


def _model_name(graph_name: str) -> str:
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", graph_name) if p]
    name = "".join(p[:1].upper() + p[1:] for p in parts)
    if not name or check_identifier(name, "model name") is not None or name[0].isdigit():
        return "Imported"
    return name
