"""Round trip: export -> import -> export gives the same outputs in onnxruntime, and
the imported spec is readable, checks, and runs on every backend."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

import nnc
from nnc.ir.ops import OPS
from tests.backends.onnx.helpers import (
    load_example,
    max_deviation,
    op_program,
    outputs_list,
    random_inputs,
    random_weights,
)
from tests.conftest import require

if TYPE_CHECKING:
    from nnc.backends.onnx.importer import Imported

# Ops whose export the importer reads back (an even-size lrn is exported written out,
# as onnxruntime's LRN refuses even sizes, and is not re-imported); the others say why
# not on the op (``onnx_not_imported``).
NOT_IMPORTED = {op for op, cls in OPS.items() if cls.onnx_not_imported}
ROUND_TRIP_OPS = sorted(op for op, cls in OPS.items() if not cls.inlined and op not in NOT_IMPORTED)


@pytest.fixture(autouse=True)
def _frameworks() -> None:
    require("onnx")
    require("onnxruntime")


def round_trip(program: nnc.Program, model_name: str) -> tuple[float, Imported]:
    """Export with random weights, import, export again; the largest difference of
    the two models' onnxruntime outputs, and the import."""
    from nnc.backends import onnx as backend
    from nnc.backends.onnx.runtime import open_session, run_session

    model = program.models[model_name]
    weights = random_weights(program, model)
    first = backend.emit(program, model_name, weights=weights)
    imported = backend.import_model(first)
    second = backend.emit(imported.program, imported.model, weights=imported.weights)
    inputs = random_inputs(model)
    a, b = open_session(first, threads=1), open_session(second, threads=1)
    out_a = run_session(a, {i.name: x for i, x in zip(a.get_inputs(), inputs, strict=True)})
    out_b = run_session(b, {i.name: x for i, x in zip(b.get_inputs(), inputs, strict=True)})
    return max_deviation(out_b, [o.astype(np.float64) for o in out_a]), imported


def test_every_example_round_trips(example: Path) -> None:
    program, model = load_example(example)
    # A causal mask is built in the graph (Range): seq_reverse and char_transformer are
    # refused; vit_digits' attention (no mask) imports as matmul and softmax.
    refused = [
        n
        for n in model.nodes
        if n.op == "sinusoidal_positions" or (n.op == "attention" and getattr(n, "causal", False))
    ]
    if refused:
        from nnc.backends import onnx as backend
        from nnc.backends.onnx.reader import OnnxImportError

        data = backend.emit(program, model.name, weights=random_weights(program, model))
        with pytest.raises(OnnxImportError, match=r"ONNX op \w+ is not supported"):
            backend.import_model(data)
        return
    deviation, imported = round_trip(program, model.name)
    assert deviation < 1e-6
    # The imported spec is .nn text that parses back to the same checked program.
    text = nnc.format(imported.program)
    assert nnc.parse(text) == imported.program
    # An rbm exports its up pass, sigmoid(v W + c): its visible bias is not part of it.
    visible = sum(
        w.size
        for name, w in random_weights(program, model).items()
        if name.endswith(".visible_bias")
    )
    assert nnc.count_params(imported.program, imported.model) == (
        nnc.count_params(program, model.name) - visible
    )


@pytest.mark.parametrize("op", sorted(NOT_IMPORTED))
def test_ops_not_imported_yet_are_refused_by_name(op: str) -> None:
    from nnc.backends import onnx as backend
    from nnc.backends.onnx.reader import OnnxImportError

    program = op_program(op)
    data = backend.emit(program, "M", weights=random_weights(program, program.models["M"]))
    with pytest.raises(OnnxImportError, match=r"ONNX op \w+ is not supported"):
        backend.import_model(data)


@pytest.mark.parametrize("op", ROUND_TRIP_OPS)
def test_every_registry_op_round_trips(op: str) -> None:
    program = op_program(op)
    deviation, imported = round_trip(program, "M")
    assert deviation < 1e-6
    ops = {n.op for n in imported.program.models[imported.model].nodes}
    # What the importer reads the export back as, stated on the op where not itself.
    imports_as = OPS[op].onnx_imports_as
    if imports_as is None:
        assert op in ops
    else:
        assert ops == set(imports_as)


def test_imported_spec_reads_like_the_original() -> None:
    from nnc.backends import onnx as backend

    program = nnc.load(Path(__file__).parents[3] / "examples" / "lenet5.nn")
    imported = backend.import_model(backend.emit(program))
    assert nnc.format(imported.program) == (
        "model LeNet5 {\n"
        "    input image: [1, 32, 32]\n"
        "    conv2d(6, 5) tanh\n"
        "    avgpool(2)\n"
        "    conv2d(16, 5) tanh\n"
        "    avgpool(2)\n"
        "    conv2d(120, 5) tanh\n"
        "    flatten\n"
        "    dense(84) tanh\n"
        "    dense(10)\n"
        "}\n"
    )
    # Layers keep their names, so the canonical weights carry over one to one.
    original = nnc.ir.weights.init_weights(program, "LeNet5", seed=0)
    assert imported.weights.keys() == original.keys()
    assert all(np.array_equal(imported.weights[k], original[k]) for k in original)


def available_backends() -> list[str]:
    """The training backends whose framework is installed (the ones onnx imports run on)."""
    from nnc.backends.registry import backends

    return [spec.name for spec in backends(trains=True, installed=True)]


def test_imported_examples_run_on_every_backend(small_example: Path) -> None:
    """The imported spec compiles to each backend, which gives onnxruntime's outputs.
    (AlexNet round-trips above; its backends are compared in the equivalence matrix.)"""
    from nnc.backends import get_backend
    from nnc.backends import onnx as backend

    program, model = load_example(small_example)
    weights = random_weights(program, model)
    imported = backend.import_model(backend.emit(program, model.name, weights=weights))
    reference = backend.build(imported.program, imported.model, imported.weights, threads=1)
    inputs = random_inputs(model)
    want = [o.astype(np.float64) for o in outputs_list(reference.forward(*inputs))]
    for name in available_backends():
        runtime = get_backend(name).build(imported.program, imported.model, imported.weights)
        got = outputs_list(runtime.forward(*inputs))
        assert max_deviation(got, want) < 2e-5 * max(1.0, max(np.abs(w).max() for w in want)), name
