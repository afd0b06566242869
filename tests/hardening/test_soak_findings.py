"""Regressions for what the front-end soak (scripts/fuzz_frontend.py) found."""

from __future__ import annotations

import time

import pytest

import nnc
from nnc.errors import ShapeError
from nnc.ir.ops import OPS
from nnc.ir.passes import model_params
from nnc.ir.program import Input, Model, Program
from nnc.ir.types import TensorType
from tests.fuzz.harness import Hang, time_allowed, time_limit


def _chain(layers: int) -> Program:
    """A typed model of ``layers`` dense/relu nodes in a row."""
    t = TensorType(shape=(4,))
    nodes = []
    previous = "x"
    for i in range(layers):
        op = (
            OPS["dense"](name=f"d{i}", inputs=(previous,), outs=(t,), units=4)
            if i % 2
            else (OPS["relu"](name=f"r{i}", inputs=(previous,), outs=(t,)))
        )
        nodes.append(op)
        previous = op.name
    model = Model(
        name="M", inputs=(Input(name="x", type=t),), nodes=tuple(nodes), outputs=(previous,)
    )
    return Program(models={"M": model})


def _seconds(program: Program) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        model_params(program, "M")
        best = min(best, time.perf_counter() - start)
    return best


def test_checking_a_long_model_takes_linear_time() -> None:
    """Mutated examples with one layer repeated 10,000 times took 40 to 100 s to
    check: every pass that asked for a node's input types scanned the node list
    (Model.value_type), so checking was quadratic. Lookups by name are now indexed:
    8 times the layers take about 8 times as long (a scan took 64 times)."""
    small, large = _chain(1_000), _chain(8_000)
    _seconds(small)  # warm up
    ratio = _seconds(large) / _seconds(small)
    assert ratio < 24, f"8x the layers took {ratio:.1f}x as long"


def test_an_edited_copy_looks_names_up_in_its_own_nodes() -> None:
    """The name index is cached on the instance; a copy with other nodes must not
    reuse the original's."""
    program = _chain(4)
    model = program.models["M"]
    assert model.node("r0").name == "r0"  # builds the index
    renamed = model.nodes[0].model_copy(update={"name": "first"})
    edited = model.model_copy(update={"nodes": (renamed, *model.nodes[1:])})
    assert edited.node("first") is renamed
    assert "r0" not in edited.nodes_by_name and "r0" in model.nodes_by_name


def test_the_hang_oracle_counts_cpu_time() -> None:
    """The soak's per-input limit is CPU time: waiting (a loaded machine) is no hang,
    computing is."""
    with time_limit(0.2):
        time.sleep(0.4)
    with pytest.raises(Hang, match="of CPU time"), time_limit(0.2):
        deadline = time.process_time() + 5
        while time.process_time() < deadline:
            pass
    assert time_allowed("x" * 90_000) == pytest.approx(9.5)


def test_prelu_of_a_scalar_is_a_shape_error() -> None:
    """Soak finding (seed 7, input 14454662): prelu over a per-sample scalar indexed its
    missing channel axis and crashed with an IndexError."""
    with pytest.raises(ShapeError) as info:
        nnc.parse("model M {\n    input x: []\n    prelu()\n}\n", "p.nn")
    assert info.value.render().splitlines()[0] == (
        "p.nn:3:5: error: prelu: expects an input with a channel axis (axis 0) for its "
        "slopes. Received: []"
    )
