"""How a Program or a Model shows itself in Jupyter: its summary table and its
picture (``_repr_html_``), or the picture alone (``_repr_svg_``).

The table lists the top-level layers (a model used as a layer is one row) with their
output shapes, parameters and multiply-accumulates; the picture is what ``nnc draw``
draws, inlined as SVG. Without Graphviz the table still shows, with a note saying so.
"""

from __future__ import annotations

import html

from nnc.draw.diagram import Box, Diagram, build_diagram
from nnc.draw.render import DrawError, layout, strip_prolog
from nnc.ir.program import Model, Program

# A picture of more boxes than this takes Graphviz seconds and a notebook page
# metres: it is left to nnc.draw.draw, which writes a file.
MAX_INLINE_BOXES = 400

_CELL = "padding: 1px 8px; text-align: {align}; font-family: monospace;"


def _count(n: int | None) -> str:
    if n is None:
        return "symbolic"
    return f"{n:,}" if n else ""


def _row(cells: list[str], tag: str = "td") -> str:
    out = []
    for k, cell in enumerate(cells):
        align = "right" if k >= 3 else "left"
        out.append(f'<{tag} style="{_CELL.format(align=align)}">{html.escape(cell)}</{tag}>')
    return "<tr>" + "".join(out) + "</tr>"


def _op(box: Box) -> str:
    if box.kind == "cluster":
        return f"call {box.text}" if box.op == "model" else box.text
    return box.op


def summary_table(diagram: Diagram) -> str:
    """The rows of a diagram folded to its top level, as an HTML table."""
    top = [b for b in diagram.boxes if b.kind != "output"]
    rows = [_row(["layer", "op", "output shape", "params", "MACs"], "th")]
    for b in top:
        params = "" if b.kind == "input" else _count(b.params)
        macs = "" if b.kind == "input" else _count(b.macs)
        rows.append(_row([b.name, _op(b), b.shape, params, macs]))
    layers = [b for b in top if b.kind != "input"]
    macs_list = [b.macs for b in layers]
    total_macs = None if None in macs_list else sum(m or 0 for m in macs_list)
    rows.append(
        _row(["total", "", "", f"{sum(b.params for b in layers):,}", _count(total_macs) or "0"])
    )
    title = html.escape(diagram.title)
    return (
        f'<table class="nnc-summary" style="border-collapse: collapse;">'
        f'<caption style="text-align: left; font-weight: bold;">{title}</caption>'
        + "".join(rows)
        + "</table>"
    )


def picture_svg(diagram: Diagram) -> str | None:
    """The SVG of a diagram, or None when it is too large to inline."""
    from nnc.draw.dot import to_dot

    if len(diagram.boxes) > MAX_INLINE_BOXES:
        return None
    return strip_prolog(layout(to_dot(diagram), "svg").decode("utf-8"))


def _typed(program: Program) -> bool:
    """Whether shape inference has run (an unchecked program has no shapes to show)."""
    return all(node.outs for m in program.models.values() for node in m.nodes)


def _alone(model: Model) -> Program:
    return Program(models={model.name: model})


def _model_html(program: Program, name: str) -> str:
    table = summary_table(build_diagram(program, name, depth=0))
    diagram = build_diagram(program, name)
    try:
        svg = picture_svg(diagram)
    except DrawError as err:
        note = html.escape(f"No picture: {err.message} ({err.hint})" if err.hint else err.message)
        return f"<div>{table}<p><i>{note}</i></p></div>"
    if svg is None:
        note = (
            f"No picture inline: {len(diagram.boxes):,} boxes. "
            "nnc.draw.draw(program, 'model.html') writes one to a file."
        )
        return f"<div>{table}<p><i>{html.escape(note)}</i></p></div>"
    return (
        '<div style="display: flex; gap: 2em; align-items: flex-start; flex-wrap: wrap;">'
        f"<div>{table}</div>"
        f'<div class="nnc-picture" style="max-width: 100%; overflow: auto;">{svg}</div></div>'
    )


def program_html(program: Program) -> str | None:
    """Every model of a checked program: its table beside its picture (None for an
    unchecked program, which IPython then shows as text)."""
    if not _typed(program):
        return None
    parts = [_model_html(program, name) for name in program.models]
    recipes = ", ".join(program.recipes)
    if recipes:
        parts.append(f"<p>train recipes: {html.escape(recipes)}</p>")
    return "\n".join(parts) or "<p>an empty program</p>"


def model_html(model: Model) -> str | None:
    """A typed model shown on its own (models it calls appear as single boxes)."""
    if not _typed(_alone(model)):
        return None
    return _model_html(_alone(model), model.name)


def program_svg(program: Program) -> str | None:
    """The picture of the main model, or None (Graphviz missing, or too large)."""
    return _svg(program, program.model().name) if program.models else None


def model_svg(model: Model) -> str | None:
    return _svg(_alone(model), model.name)


def _svg(program: Program, name: str) -> str | None:
    if not _typed(program):
        return None
    try:
        return picture_svg(build_diagram(program, name))
    except DrawError:
        return None  # IPython then shows the next representation it has
