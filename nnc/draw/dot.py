"""A :class:`~nnc.draw.diagram.Diagram` as Graphviz DOT text.

Boxes get HTML-like labels (the node's name in bold, the layer call, then the output
shape and the parameter count), a colour per op family and an SVG ``id`` of
``box_<k>``; clusters get ``cluster_<k>``; edges ``edge_<k>``, so the HTML viewer can
find each one. Every piece of text is HTML-escaped, and every DOT string quoted.
"""

from __future__ import annotations

import html

from nnc.draw.diagram import Box, Cluster, Diagram
from nnc.ir.ops import OPS

# Fill colours per op family (the module of nnc/ir/ops an op lives in).
FAMILY_COLOURS = {
    "conv": "#dbe9f6",
    "dense": "#fde5cc",
    "recurrent": "#f6dbe9",
    "normalization": "#e6dcf5",
    "pooling": "#fdf3c4",
    "reshape": "#eeeeee",
    "activations": "#f7f7f7",
    "graph": "#ffffff",
}
INPUT_COLOUR = "#d5f0d5"
CLUSTER_COLOURS = {"block": "#fbfbf4", "model": "#f2f6fb"}


def family(op: str) -> str:
    """The op family: ``conv``, ``dense``, ``activations``...

    >>> family("conv2d"), family("relu")
    ('conv', 'activations')
    """
    cls = OPS.get(op)
    return cls.__module__.rsplit(".", 1)[-1] if cls is not None else ""


def quote(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def box_figures(box: Box) -> str:
    """``[16, 8, 8] · 160 params``: the shape and the parameter count, if any."""
    parts = [box.shape]
    if box.params:
        parts.append(f"{box.params:,} params")
    return " · ".join(parts)


def _table(rows: list[str]) -> str:
    cells = "".join(f"<TR><TD>{r}</TD></TR>" for r in rows)
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">{cells}</TABLE>>'


def _small(text: str) -> str:
    return f'<FONT POINT-SIZE="10" COLOR="#444444">{html.escape(text)}</FONT>'


def _label(box: Box) -> str:
    title = f"{box.kind} {box.name}" if box.kind in ("input", "output") else box.label
    rows = [f"<B>{html.escape(title)}</B>"]
    # relu_1 says relu already; a node named y or residual_1_y_2 does not.
    if box.kind in ("layer", "cluster") and not (
        box.text == box.op and box.label.startswith(box.op)
    ):
        rows.append(html.escape(box.text))
    rows.append(_small(box_figures(box)))
    return _table(rows)


def _node_line(box: Box, index: int) -> str:
    if box.kind in ("input", "output"):
        shape, fill = "ellipse", INPUT_COLOUR
    elif box.kind == "cluster":
        shape, fill = "box", CLUSTER_COLOURS.get(box.op, "#ffffff")
    else:
        shape, fill = "box", FAMILY_COLOURS.get(family(box.op), "#ffffff")
    style = "filled,rounded,bold" if box.kind == "cluster" else "filled,rounded"
    return (
        f"{quote(box.id)} [id={quote(f'box_{index}')}, shape={shape}, style={quote(style)}, "
        f"fillcolor={quote(fill)}, label={_label(box)}];"
    )


def _cluster_label(c: Cluster) -> str:
    rows = [f"<B>{html.escape(c.label)}</B>"]
    if c.params:
        rows.append(_small(f"{c.params:,} params"))
    return _table(rows)


def to_dot(diagram: Diagram) -> str:
    """The DOT text of a diagram; clusters nest as ``subgraph cluster_<k>``.

    >>> import nnc
    >>> from nnc.draw.diagram import build_diagram
    >>> text = to_dot(build_diagram(nnc.load("examples/xor.nn")))
    >>> text.count("[id=\\"box_"), text.count(" -> ")
    (6, 5)
    """
    index = {c.id: k for k, c in enumerate(diagram.clusters)}
    children: dict[str | None, list[Cluster]] = {}
    for c in diagram.clusters:
        children.setdefault(c.parent, []).append(c)
    members: dict[str | None, list[tuple[int, Box]]] = {}
    for k, b in enumerate(diagram.boxes):
        members.setdefault(b.cluster, []).append((k, b))

    lines = [
        "digraph nnc {",
        f"  graph [label={quote(diagram.title)}, labelloc=t, fontname=Helvetica, "
        "fontsize=16, rankdir=TB, nodesep=0.3, ranksep=0.3, newrank=true];",
        '  node [fontname=Helvetica, fontsize=12, color="#555555", margin="0.12,0.04"];',
        '  edge [color="#666666", arrowsize=0.7];',
    ]

    def emit(parent: str | None, indent: str) -> None:
        for k, b in members.get(parent, []):
            lines.append(indent + _node_line(b, k))
        for c in children.get(parent, []):
            n = index[c.id]
            style = "rounded,dashed" if c.kind == "block" else "rounded,filled"
            lines.append(f"{indent}subgraph cluster_{n} {{")
            lines.append(
                f"{indent}  graph [id={quote(f'cluster_{n}')}, label={_cluster_label(c)}, "
                f"style={quote(style)}, fillcolor={quote(CLUSTER_COLOURS[c.kind])}, "
                'color="#888888", labeljust=l, fontsize=12];'
            )
            emit(c.id, indent + "  ")
            lines.append(f"{indent}}}")

    emit(None, "  ")
    sources = [quote(b.id) for b in diagram.boxes if b.kind == "input"]
    sinks = [quote(b.id) for b in diagram.boxes if b.kind == "output"]
    if len(sources) > 1:
        lines.append("  { rank=source; " + "; ".join(sources) + "; }")
    if len(sinks) > 1:
        lines.append("  { rank=sink; " + "; ".join(sinks) + "; }")
    for k, (s, d) in enumerate(diagram.edges):
        lines.append(f"  {quote(s)} -> {quote(d)} [id={quote(f'edge_{k}')}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
