"""A per-layer summary of a typed model: output shapes, parameters, memory.

>>> import nnc
>>> s = summarize(nnc.load("examples/mlp_4_5_5_3.nn"), "Mlp")
>>> [(r.name, r.params) for r in s.rows if r.params]
[('dense_1', 25), ('dense_2', 30), ('dense_3', 18)]
>>> s.total_params
73
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from nnc.ir.ops.graph import Call
from nnc.ir.passes.params import model_params
from nnc.ir.types import format_shape, numel

if TYPE_CHECKING:
    from nnc.ir.program import Model, Program

BYTES_PER_VALUE = 4  # float32 (int64 inputs are counted at 8)


@dataclass(frozen=True)
class Row:
    name: str
    op: str
    inputs: tuple[str, ...]
    output_shape: str
    params: int
    trainable: bool


@dataclass(frozen=True)
class ModelSummary:
    model: str
    inputs: list[tuple[str, str]]
    rows: list[Row] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    buffer_values: int = 0
    activation_values_per_sample: int | None = 0

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    @property
    def param_bytes(self) -> int:
        return (self.total_params + self.buffer_values) * BYTES_PER_VALUE

    @property
    def activation_bytes_per_sample(self) -> int | None:
        v = self.activation_values_per_sample
        return None if v is None else v * BYTES_PER_VALUE

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rows"] = [asdict(r) for r in self.rows]
        d["non_trainable_params"] = self.non_trainable_params
        d["param_bytes"] = self.param_bytes
        d["activation_bytes_per_sample"] = self.activation_bytes_per_sample
        return d


def summarize(program: Program, model: Model | str) -> ModelSummary:
    """Rows per node plus totals; ``program`` must be checked."""
    m = program.models[model] if isinstance(model, str) else model
    params = model_params(program, m)
    owned: dict[str, int] = {}
    for p in params:
        if p.spec.buffer:
            continue
        top = p.node.split(".", 1)[0]
        owned[top] = owned.get(top, 0) + p.spec.size
    rows = []
    activations: int | None = 0
    for node in m.nodes:
        shapes = ", ".join(format_shape(t.shape) for t in node.outs)
        op = f"call {node.model}" if isinstance(node, Call) else node.op
        rows.append(
            Row(
                name=node.name,
                op=op,
                inputs=node.inputs,
                output_shape=shapes,
                params=owned.get(node.name, 0),
                trainable=bool(getattr(node, "trainable", True)),
            )
        )
        for t in node.outs:
            n = numel(t.shape)
            activations = None if activations is None or isinstance(n, str) else activations + n
    return ModelSummary(
        model=m.name,
        inputs=[(i.name, str(i.type)) for i in m.inputs],
        rows=rows,
        total_params=sum(p.spec.size for p in params if not p.spec.buffer),
        trainable_params=sum(p.spec.size for p in params if p.spec.trainable),
        buffer_values=sum(p.spec.size for p in params if p.spec.buffer),
        activation_values_per_sample=activations,
    )


def human_bytes(n: float) -> str:
    """``3.7 TiB``-style sizes.

    >>> human_bytes(4_000_000_000_000)
    '3.6 TiB'
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def format_summary(s: ModelSummary) -> str:
    """A :class:`ModelSummary` as a plain-text table (what ``Program.summary`` prints).

    Frozen layers (``trainable = false``) show ``frozen`` after their count.
    """
    header = ("layer", "op", "inputs", "output shape", "params")
    rows: list[tuple[str, ...]] = [(name, "input", "", t, "") for name, t in s.inputs]
    for r in s.rows:
        count = f"{r.params:,}" if r.params else ""
        if r.params and not r.trainable:
            count += " frozen"
        rows.append((r.name, r.op, ", ".join(r.inputs), r.output_shape, count))
    rows.append(("total", "", "", "", f"{s.total_params:,}"))
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        cells = [cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=False)]
        return ("  " + "  ".join(cells) + "  " + row[-1].rjust(widths[-1])).rstrip()

    act = s.activation_bytes_per_sample
    footer = (
        f"params: {s.total_params:,} ({s.trainable_params:,} trainable, "
        f"{s.non_trainable_params:,} frozen)"
        + (f", plus {s.buffer_values:,} buffer values" if s.buffer_values else "")
        + f"; parameter memory {human_bytes(s.param_bytes)}; activations "
        + (f"{human_bytes(act)} per sample" if act is not None else "depend on symbolic dims")
    )
    return "\n".join([f"model {s.model}", line(header), *(line(r) for r in rows), footer])
