"""``nnc draw``: one SVG element per node with its shape, clusters for blocks and called
models, several inputs and outputs, an imported ResNet-sized ONNX model laid out
without overlapping boxes, crossing edges or edges through boxes, and clear errors."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import nnc
from nnc.draw import DrawError, build_diagram, from_text, load_drawable, render
from nnc.ir.ops.graph import Call
from tests.conftest import EXAMPLE_FILES, EXAMPLES, SEARCH_EXAMPLES, run_nnc

HERE = Path(__file__).parent
SVG = "{http://www.w3.org/2000/svg}"

if shutil.which("dot") is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI must have Graphviz: .ci/run installs Debian's graphviz")
    pytest.skip(
        "Graphviz's dot is not installed (apt-get install graphviz)", allow_module_level=True
    )


def svg_groups(svg: bytes, cls: str) -> dict[str, ET.Element]:
    root = ET.fromstring(svg)
    return {g.get("id", ""): g for g in root.iter(f"{SVG}g") if g.get("class") == cls}


def texts(group: ET.Element) -> list[str]:
    return [t.text or "" for t in group.iter(f"{SVG}text")]


def expected_boxes(program: nnc.Program, model: str) -> int:
    """Inputs, outputs and every node, a call counted as its callee's nodes."""

    def nodes(name: str) -> int:
        m = program.models[name]
        return sum(nodes(n.model) if isinstance(n, Call) else 1 for n in m.nodes)

    m = program.models[model]
    return len(m.inputs) + len(m.outputs) + nodes(model)


@pytest.mark.parametrize("example", [p.name for p in EXAMPLE_FILES])
def test_every_example_one_element_per_node_with_its_shape(example: str) -> None:
    drawable = load_drawable(EXAMPLES / example)
    for model in drawable.program.models:
        diagram = drawable.diagram(model)
        svg = render(diagram, "svg")
        groups = svg_groups(svg, "node")
        assert len(groups) == expected_boxes(drawable.program, model)
        for k, box in enumerate(diagram.boxes):
            lines = texts(groups[f"box_{k}"])
            shown = " ".join(lines)
            assert box.shape in shown, (box.id, lines)
            if box.params:
                assert f"{box.params:,} params" in shown
            if box.kind == "layer":  # its op, and its main arguments where it has some
                assert box.op in shown and box.text in shown, (box.id, box.text, lines)


def test_a_layer_shows_its_main_arguments() -> None:
    diagram = load_drawable(EXAMPLES / "digits_cnn.nn").diagram()
    svg = svg_groups(render(diagram, "svg"), "node")
    shown = {b.name: " ".join(texts(svg[f"box_{k}"])) for k, b in enumerate(diagram.boxes)}
    assert shown["conv2d_1"] == "conv2d_1 conv2d(16, 3, padding = same) [16, 8, 8] · 160 params"
    assert shown["conv2d_2"] == "conv2d_2 conv2d(32, 3) [32, 2, 2] · 4,640 params"
    assert shown["dropout_1"] == "dropout_1 dropout(0.25) [64]"


def test_blocks_are_clusters_with_their_nodes() -> None:
    diagram = load_drawable(EXAMPLES / "resnet_block.nn").diagram()
    assert [c.label for c in diagram.clusters] == [
        "residual_1 = residual(16)",
        "residual_2 = residual(16)",
    ]
    inside = [b.label for b in diagram.boxes if b.cluster == "residual_1"]
    assert inside == ["conv2d_1", "batchnorm_1", "y", "conv2d_2", "y_2", "add_1", "relu_1"]
    assert diagram.clusters[0].params == 2 * 2320 + 2 * 32
    svg = render(diagram, "svg")
    clusters = svg_groups(svg, "cluster")
    assert "residual_1 = residual(16)" in texts(clusters["cluster_0"])


def test_nested_blocks_in_a_called_model() -> None:
    text = (
        "block inner(c) {\n    input x: [c]\n    output relu(x + dense(x, c))\n}\n"
        "block outer(c) {\n    input x: [c]\n    y = x |> inner(c) |> inner(c)\n    output y\n}\n"
        "model Body {\n    input x: [4]\n    outer(4)\n}\n"
        "model Top {\n    input a: [4]\n    input b: [4]\n"
        "    h = a |> Body\n    output h, b |> dense(2)\n}\n"
    )
    diagram = from_text(text).diagram("Top")
    parents = {c.id: c.parent for c in diagram.clusters}
    # The call is named h (its assignment), the last instance of a pipe y likewise.
    assert parents == {
        "h": None,
        "h.outer_1": "h",
        "h.outer_1_inner_1": "h.outer_1",
        "h.outer_1_y": "h.outer_1",
    }
    assert [c.label for c in diagram.clusters][2:] == [
        "outer_1_inner_1 = inner(c)",
        "outer_1_y = inner(c)",
    ]
    dense = diagram.box("h.outer_1_y_dense_1")
    assert (dense.cluster, dense.label) == ("h.outer_1_y", "dense_1")
    assert [b.id for b in diagram.boxes if b.kind in ("input", "output")] == [
        "a",
        "b",
        "output:0",
        "output:1",
    ]
    dot_text = render(diagram, "dot").decode()
    assert '{ rank=source; "a"; "b"; }' in dot_text
    assert '{ rank=sink; "output:0"; "output:1"; }' in dot_text
    svg = render(diagram, "svg")
    assert len(svg_groups(svg, "cluster")) == 4
    # Folded to the top level, the call is one box with the callee's parameters.
    folded = from_text(text).diagram("Top", depth=0)
    body = folded.box("h")
    assert (body.kind, body.params, folded.clusters) == ("cluster", 2 * (4 * 4 + 4), [])
    assert ("a", "h") in folded.edges and ("h", "output:0") in folded.edges


def _title(group: ET.Element) -> str:
    title = group.find(f"{SVG}title")
    assert title is not None and title.text is not None
    return title.text


def _boxes_of(svg: bytes) -> dict[str, tuple[float, float, float, float]]:
    """The bounding box of each node's outline (from its path, polygon or ellipse), by
    the node's name."""
    out = {}
    for g in svg_groups(svg, "node").values():
        xs: list[float] = []
        ys: list[float] = []
        for shape in g:
            if shape.tag in (f"{SVG}path", f"{SVG}polygon"):
                coords = re.findall(r"(-?[\d.]+),(-?[\d.]+)", shape.get("d") or shape.get("points"))
                xs += [float(x) for x, _ in coords]
                ys += [float(y) for _, y in coords]
            elif shape.tag == f"{SVG}ellipse":
                cx, cy = float(shape.get("cx")), float(shape.get("cy"))
                rx, ry = float(shape.get("rx")), float(shape.get("ry"))
                xs += [cx - rx, cx + rx]
                ys += [cy - ry, cy + ry]
        out[_title(g)] = (min(xs), min(ys), max(xs), max(ys))
    return out


Point = tuple[float, float]


def _edges_of(svg: bytes) -> dict[tuple[str, str], list[Point]]:
    """Each edge's path (Graphviz writes ``M p C p p p C ...``: cubic Béziers) as a
    polyline of 16 points per curve, by its (tail, head) node names."""
    out = {}
    for g in svg_groups(svg, "edge").values():
        path = g.find(f"{SVG}path")
        assert path is not None
        pts = [(float(x), float(y)) for x, y in re.findall(r"(-?[\d.]+),(-?[\d.]+)", path.get("d"))]
        line = [pts[0]]
        for k in range(1, len(pts) - 2, 3):
            p0, p1, p2, p3 = line[-1], pts[k], pts[k + 1], pts[k + 2]
            for i in range(1, 17):
                t = i / 16
                a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t * t, t**3
                line.append(
                    (
                        a * p0[0] + b * p1[0] + c * p2[0] + d * p3[0],
                        a * p0[1] + b * p1[1] + c * p2[1] + d * p3[1],
                    )
                )
        tail, _, head = _title(g).partition("->")
        out[(tail, head)] = line
    return out


def _crosses(p: Point, q: Point, r: Point, s: Point) -> bool:
    """Whether segments pq and rs cross (each one's ends strictly either side of the
    other)."""

    def side(a: Point, b: Point, c: Point) -> int:
        v = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        return (v > 1e-9) - (v < -1e-9)

    return side(p, q, r) * side(p, q, s) < 0 and side(r, s, p) * side(r, s, q) < 0


def crossings(svg: bytes) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """The pairs of edges whose paths cross. Edges that share a node meet at it, so
    only pairs with four distinct ends are compared."""
    edges = _edges_of(svg)
    found = []
    names = list(edges)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if set(a) & set(b):
                continue
            la, lb = edges[a], edges[b]
            if any(
                _crosses(la[x], la[x + 1], lb[y], lb[y + 1])
                for x in range(len(la) - 1)
                for y in range(len(lb) - 1)
            ):
                found.append((a, b))
    return found


def test_the_crossing_check_finds_crossings() -> None:
    # K(3,3) cannot be drawn without crossings: the check must see them.
    dot = shutil.which("dot")
    assert dot is not None
    k33 = "digraph { " + " ".join(f"{a}->{b};" for a in "abc" for b in "xyz") + " }"
    svg = subprocess.run([dot, "-Tsvg"], input=k33.encode(), capture_output=True, check=True)
    assert len(crossings(svg.stdout)) >= 1


def test_imported_resnet18_is_drawn_without_overlaps(tmp_path: Path) -> None:
    onnx_file = tmp_path / "resnet18.onnx"
    onnx_file.write_bytes(nnc.emit(nnc.load(HERE / "resnet18.nn"), "onnx"))
    result = run_nnc("draw", str(onnx_file), "-o", str(tmp_path / "resnet18.svg"))
    assert result.returncode == 0, result.stderr
    assert "68 layers" in result.stderr
    svg = (tmp_path / "resnet18.svg").read_bytes()
    assert len(svg_groups(svg, "node")) == 68 + 2
    assert len(svg_groups(svg, "edge")) == 68 + 1 + 8  # a chain, plus 8 skip edges
    boxes = _boxes_of(svg)
    names = list(boxes)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = boxes[a], boxes[b]
            apart = ax1 <= bx0 or bx1 <= ax0 or ay1 <= by0 or by1 <= ay0
            assert apart, (a, b)
    # No two edges cross, and no edge runs through a box it does not join.
    assert crossings(svg) == []
    for ends, line in _edges_of(svg).items():
        for name, (x0, y0, x1, y1) in boxes.items():
            if name not in ends:
                inside = [p for p in line if x0 + 1 < p[0] < x1 - 1 and y0 + 1 < p[1] < y1 - 1]
                assert not inside, (ends, name)


def test_png_and_html_forms(tmp_path: Path) -> None:
    png = tmp_path / "xor.png"
    assert run_nnc("draw", str(EXAMPLES / "xor.nn"), "-o", str(png)).returncode == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = render(load_drawable(EXAMPLES / "digits_cnn.nn").diagram(), "html").decode()
    assert "<script src" not in page and "http://" not in page.split("<svg", 1)[0]
    assert page.count("<svg") == 1


def test_source_text_cannot_close_the_script(tmp_path: Path) -> None:
    spec = tmp_path / "evil.nn"
    spec.write_text(
        "model M {\n    input x: [2]\n    dense(1)  # </script><script>alert(1)</script>\n}\n"
    )
    page = render(load_drawable(spec).diagram(), "html").decode()
    data = page.split('id="nnc-data">', 1)[1].split("</script>", 1)[0]
    assert "\\u003c/script>\\u003cscript>alert(1)" in data


def test_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = run_nnc("draw", str(EXAMPLES / "xor.nn"), "-o", str(tmp_path / "x.jpg"))
    assert bad.returncode == 1
    assert "error: the output must end in .svg, .png, .html, .dot. Received:" in bad.stderr
    spec = tmp_path / "broken.nn"
    spec.write_text("model M {\n    input x: [1, 8, 8]\n    dense(3)\n}\n")
    broken = run_nnc("draw", str(spec), "-o", str(tmp_path / "b.svg"))
    assert broken.returncode == 1 and f"{spec}:3:5: error: dense" in broken.stderr
    negative = run_nnc("draw", str(spec), "-o", "x.svg", "--depth", "-1")
    assert negative.returncode == 2
    assert "argument --depth: expected 0 or more. Received: -1" in negative.stderr
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(DrawError, match="Graphviz's 'dot' program is not installed"):
        render(build_diagram(nnc.load(EXAMPLES / "xor.nn")), "svg")


@pytest.mark.parametrize("example", SEARCH_EXAMPLES, ids=lambda p: p.name)
def test_a_search_space_is_refused_at_its_first_distribution(example: Path, tmp_path: Path) -> None:
    """A space is a network only once sampled: nnc draw names the distribution."""
    result = run_nnc("draw", str(example), "-o", str(tmp_path / "space.svg"))
    assert result.returncode == 1
    where = re.escape(str(example))
    assert re.match(rf"{where}:\d+:\d+: error: .* is a search distribution", result.stderr)
    assert not (tmp_path / "space.svg").exists()
