"""Pictures of networks: ``nnc draw`` and the notebook reprs.

A checked model becomes a :class:`~nnc.draw.diagram.Diagram` (boxes, edges, nested
clusters for blocks and called models), then DOT text (:mod:`nnc.draw.dot`), which
Graphviz lays out as SVG or PNG (:mod:`nnc.draw.render`); the HTML form wraps the SVG
with a small offline viewer (:mod:`nnc.draw.html`).

>>> import nnc
>>> dot_text = draw_dot(nnc.load("examples/xor.nn"))
>>> dot_text.startswith("digraph nnc {")
True
"""

from __future__ import annotations

from pathlib import Path

from nnc.draw.diagram import BlockInstance, Diagram, build_diagram
from nnc.draw.dot import to_dot
from nnc.draw.html import html_page
from nnc.draw.render import FORMATS, DrawError, layout
from nnc.draw.source import Drawable, from_text, load_drawable
from nnc.ir.program import Program


def draw_dot(program: Program, model: str | None = None, depth: int | None = None) -> str:
    """The DOT text of a checked model (no block clusters: a Program does not keep its
    blocks; draw its source with :func:`draw` for them)."""
    return to_dot(build_diagram(program, model, depth=depth))


def render(diagram: Diagram, fmt: str) -> bytes:
    """The picture of ``diagram`` as ``svg``, ``png``, ``html`` or ``dot`` bytes."""
    if fmt not in FORMATS:
        raise DrawError(
            f"cannot draw a .{fmt} file; the output must end in "
            + ", ".join(f".{f}" for f in FORMATS)
            + f". Received: {fmt or 'no suffix'}"
        )
    text = to_dot(diagram)
    if fmt == "dot":
        return text.encode("utf-8")
    if fmt == "html":
        svg = layout(text, "svg").decode("utf-8")
        return html_page(diagram, svg).encode("utf-8")
    return layout(text, fmt)


def draw(
    source: str | Path | Program | Drawable,
    out: str | Path,
    *,
    model: str | None = None,
    depth: int | None = None,
) -> Path:
    """Draw a ``.nn`` or ``.onnx`` file (or a checked program) to ``out``, whose
    suffix picks the form: ``.svg``, ``.png``, ``.html`` or ``.dot``."""
    if isinstance(source, Program):
        drawable = Drawable(source)
    elif isinstance(source, Drawable):
        drawable = source
    else:
        drawable = load_drawable(source)
    target = Path(out)
    data = render(drawable.diagram(model, depth), target.suffix.lower().lstrip("."))
    target.write_bytes(data)
    return target


__all__ = [
    "FORMATS",
    "BlockInstance",
    "Diagram",
    "DrawError",
    "Drawable",
    "build_diagram",
    "draw",
    "draw_dot",
    "from_text",
    "load_drawable",
    "render",
    "to_dot",
]
