"""The HTML form of a picture: one self-contained file that works offline.

It inlines the SVG that Graphviz laid out, the details of every box and cluster as
JSON, and a small viewer script of nnc's own (``viewer.js``: pan by dragging, zoom
with the wheel or the buttons, click a box for its details and source line, click a
cluster's title to fold it). Nothing is fetched from anywhere.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any

from nnc.draw.diagram import Box, Cluster, Diagram
from nnc.draw.render import strip_prolog
from nnc.errors import Span

STYLE = """
html, body { margin: 0; height: 100%; font-family: Helvetica, Arial, sans-serif; }
body { display: flex; flex-direction: column; }
header { display: flex; gap: 0.5em; align-items: center; padding: 0.4em 0.8em;
         border-bottom: 1px solid #ccc; background: #fafafa; }
header h1 { font-size: 1em; margin: 0 1em 0 0; }
header button { font-size: 0.9em; }
main { flex: 1; display: flex; min-height: 0; }
#stage { flex: 1; overflow: hidden; cursor: grab; touch-action: none; }
#stage.panning { cursor: grabbing; }
#stage svg { width: 100%; height: 100%; display: block; user-select: none; }
#stage g.node { cursor: pointer; }
#stage g.node.selected > path, #stage g.node.selected > polygon,
#stage g.node.selected > ellipse { stroke: #d33; stroke-width: 3; }
#stage g.cluster { cursor: pointer; }
#stage g.cluster.folded > path, #stage g.cluster.folded > polygon { fill: #e8e8e8; }
#details { width: 22em; border-left: 1px solid #ccc; padding: 0.6em 0.9em;
           overflow: auto; font-size: 0.9em; }
#details h2 { font-size: 1.1em; margin: 0.2em 0 0.6em; word-break: break-all; }
#details th { text-align: left; padding-right: 0.8em; color: #555; font-weight: normal;
              vertical-align: top; }
#details td { word-break: break-word; }
#details pre.source { background: #f4f4f4; padding: 0.5em; white-space: pre-wrap; }
#details p.hint { color: #777; }
"""


def _where(span: Span | None) -> str:
    return str(span) if span is not None else ""


def _box_info(box: Box, chain: list[str], cluster_label: str) -> dict[str, Any]:
    return {
        "name": box.name,
        "text": box.text,
        "op": box.op,
        "shape": box.shape,
        "params": box.params,
        "macs": box.macs,
        "cluster": cluster_label,
        "chain": chain,
        "where": _where(box.span),
        "source": box.source,
    }


def page_data(diagram: Diagram) -> dict[str, Any]:
    """What the viewer shows per SVG id: ``box_<k>``, ``cluster_<k>`` and the edges."""
    svg_id = {c.id: f"cluster_{k}" for k, c in enumerate(diagram.clusters)}
    by_id = {c.id: c for c in diagram.clusters}

    def chain(cluster: str | None) -> list[str]:
        out = []
        while cluster is not None:
            out.append(svg_id[cluster])
            cluster = by_id[cluster].parent
        return out

    box_ids = {b.id: f"box_{k}" for k, b in enumerate(diagram.boxes)}
    boxes = {
        box_ids[b.id]: _box_info(
            b, chain(b.cluster), by_id[b.cluster].label if b.cluster in by_id else ""
        )
        for b in diagram.boxes
    }
    clusters = {svg_id[c.id]: _cluster_info(c, chain(c.id)) for c in diagram.clusters}
    edges = [
        {"id": f"edge_{k}", "from": box_ids[s], "to": box_ids[d]}
        for k, (s, d) in enumerate(diagram.edges)
    ]
    return {"title": diagram.title, "boxes": boxes, "clusters": clusters, "edges": edges}


def _cluster_info(c: Cluster, chain: list[str]) -> dict[str, Any]:
    return {
        "name": c.label,
        "text": "a block instance" if c.kind == "block" else "a model used as a layer",
        "op": c.kind,
        "shape": "",
        "params": c.params,
        "macs": c.macs,
        "cluster": "",
        "chain": chain,
        "where": _where(c.span),
        "source": c.source,
    }


def _json_for_script(value: Any) -> str:
    # "<" escaped, so no text from the spec can close the script element.
    return json.dumps(value, indent=None, sort_keys=True).replace("<", "\\u003c")


def html_page(diagram: Diagram, svg: str) -> str:
    """One HTML document holding the picture, its data and the viewer."""
    script = resources.files("nnc.draw").joinpath("viewer.js").read_text(encoding="utf-8")
    title = html.escape(diagram.title)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="generator" content="nnc draw">
<title>{title}</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>{title}</h1>
<button id="zoom-in" title="zoom in">+</button>
<button id="zoom-out" title="zoom out">&minus;</button>
<button id="zoom-fit" title="the whole network">fit</button>
<button id="unfold" title="unfold every cluster">unfold all</button>
</header>
<main>
<div id="stage">
{strip_prolog(svg)}
</div>
<aside id="details"><p class="hint">Drag to pan, scroll to zoom. Click a layer for its
details and source line; click a cluster's title to fold it.</p></aside>
</main>
<script type="application/json" id="nnc-data">{_json_for_script(page_data(diagram))}</script>
<script>
{script}
</script>
</body>
</html>
"""
