"""A typed model as a diagram: boxes, arrows and nested clusters, before any layout.

Every node of the IR is a box with its op, the layer call that writes it, its output
shape, its parameters and its multiply-accumulates. A model used as a layer is
expanded into a cluster holding its own nodes (recursively); a block instance, which
the lowering has already inlined, becomes a cluster of the nodes it produced. Model
inputs and outputs are boxes of their own, so several of each show as such.

Clusters nested deeper than ``depth`` are drawn collapsed: one box that stands for
all their nodes, with the edges into and out of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from nnc.dsl.unparse import node_text
from nnc.errors import Span, source_lines
from nnc.ir.base import Op
from nnc.ir.flops import count_macs
from nnc.ir.ops.graph import Call
from nnc.ir.program import Model, Program
from nnc.ir.types import format_shape


@dataclass(frozen=True)
class BlockInstance:
    """One use of a block inside a model: its instance name (the prefix of the names
    of its nodes), the block, the call text and where the block is defined."""

    model: str
    instance: str
    block: str
    text: str
    span: Span | None = None
    definition: Span | None = None


@dataclass
class Box:
    id: str
    name: str
    kind: str  # "input", "output", "layer", or "cluster" for a collapsed cluster
    op: str
    text: str
    shape: str
    params: int = 0
    macs: int | None = 0
    span: Span | None = None
    cluster: str | None = None
    source: str = ""  # the source line the span points at, when the text is known
    label: str = ""  # the name as drawn: without the prefix of its block instance

    def __post_init__(self) -> None:
        self.label = self.label or self.name


@dataclass
class Cluster:
    id: str
    name: str  # the instance: residual_1, encoder_1
    text: str  # what it instantiates: residual(16), Encoder
    kind: str  # "block" or "model"
    parent: str | None
    span: Span | None = None
    params: int = 0
    macs: int | None = 0
    source: str = ""  # the source line that uses the block or model

    @property
    def label(self) -> str:
        return f"{self.name} = {self.text}" if self.kind == "block" else f"{self.name}: {self.text}"


@dataclass
class Diagram:
    title: str
    boxes: list[Box] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)

    def box(self, box_id: str) -> Box:
        return next(b for b in self.boxes if b.id == box_id)


def _contains(outer: Span | None, inner: Span | None) -> bool:
    if outer is None or inner is None:
        return True
    return (outer.line, outer.col) <= (inner.line, inner.col) and (inner.line, inner.col) < (
        outer.end_line,
        outer.end_col,
    )


class _Builder:
    def __init__(self, program: Program, blocks: Sequence[BlockInstance], source: str | None):
        self.program = program
        self.blocks = blocks
        self.lines = source_lines(source) if source is not None else None
        self.diagram = Diagram(title="")
        self._params: dict[str, dict[str, int]] = {}
        self._macs: dict[str, dict[str, int | None]] = {}

    def params(self, model: str) -> dict[str, int]:
        """Parameters per node (buffers excluded); a call counts its callee's, or 0
        when the callee is not in the program (a Model displayed on its own)."""
        if model not in self._params:
            m = self.program.models[model]
            counts = {}
            for node in m.nodes:
                if isinstance(node, Call):
                    callee = self.params(node.model) if node.model in self.program.models else {}
                    counts[node.name] = sum(callee.values())
                else:
                    ins = [m.value_type(ref) for ref in node.inputs]
                    counts[node.name] = sum(s.size for s in node.param_specs(ins) if not s.buffer)
            self._params[model] = counts
        return self._params[model]

    def macs(self, model: str) -> dict[str, int | None]:
        if model not in self._macs:
            m = self.program.models[model]
            counts: dict[str, int | None] = {}
            for node in m.nodes:
                if isinstance(node, Call):
                    known = node.model in self.program.models
                    counts[node.name] = (
                        count_macs(self.program, node.model).total if known else None
                    )
                else:
                    counts[node.name] = node.macs([m.value_type(r) for r in node.inputs])
            self._macs[model] = counts
        return self._macs[model]

    def source_line(self, span: Span | None) -> str:
        if span is None or self.lines is None or not 1 <= span.line <= len(self.lines):
            return ""
        return self.lines[span.line - 1].strip()

    def model(
        self, model: Model, prefix: str, bound: dict[str, str], parent: str | None
    ) -> dict[str, str]:
        """Add the boxes of ``model`` (ids prefixed by ``prefix``), its inputs read from
        the box ids in ``bound``; returns the box id producing each value reference."""
        produced = dict(bound)
        clusters = self.block_clusters(model, prefix, parent)
        params, macs = self.params(model.name), self.macs(model.name)
        for node in model.nodes:
            sources = [produced[ref] for ref in node.inputs]
            where, label = self.cluster_of(node.name, node.span, clusters, prefix, parent)
            if isinstance(node, Call) and node.model not in self.program.models:
                # A model the program does not hold (a Model shown on its own): one box.
                self.node_box(
                    node,
                    f"{prefix}{node.name}",
                    sources,
                    where,
                    text=f"{node.model} (not shown)",
                    params=0,
                    macs=None,
                )
                produced[node.name] = f"{prefix}{node.name}"
                for k in range(len(node.outs)):
                    produced[f"{node.name}:{k}"] = f"{prefix}{node.name}"
                continue
            if isinstance(node, Call):
                callee = self.program.models[node.model]
                cid = f"{prefix}{node.name}"
                self.diagram.clusters.append(
                    Cluster(
                        id=cid,
                        name=node.name,
                        text=node.model,
                        kind="model",
                        parent=where,
                        span=node.span,
                        params=params.get(node.name, 0),
                        macs=macs.get(node.name),
                        source=self.source_line(node.span),
                    )
                )
                inner = dict(zip((i.name for i in callee.inputs), sources, strict=True))
                outs = self.model(callee, f"{cid}.", inner, cid)
                for k, ref in enumerate(callee.outputs):
                    produced[f"{node.name}:{k}"] = outs[ref]
                produced[node.name] = outs[callee.outputs[0]]
                continue
            box_id = self.node_box(
                node,
                f"{prefix}{node.name}",
                sources,
                where,
                text=node_text(node),
                params=params.get(node.name, 0),
                macs=macs.get(node.name, 0),
                label=label,
            )
            produced[node.name] = box_id
        return produced

    def node_box(
        self,
        node: Op,
        box_id: str,
        sources: list[str],
        where: str | None,
        *,
        text: str,
        params: int,
        macs: int | None,
        label: str = "",
    ) -> str:
        """Add the box of one node, and the edges into it from ``sources``."""
        self.diagram.boxes.append(
            Box(
                id=box_id,
                name=node.name,
                kind="layer",
                op=node.op,
                text=text,
                shape=", ".join(format_shape(t.shape) for t in node.outs),
                params=params,
                macs=macs,
                span=node.span,
                cluster=where,
                source=self.source_line(node.span),
                label=label,
            )
        )
        self.diagram.edges += [(s, box_id) for s in dict.fromkeys(sources)]
        return box_id

    def block_clusters(self, model: Model, prefix: str, parent: str | None) -> list[BlockInstance]:
        """The block instances of ``model``, added as clusters, innermost last."""
        mine = [b for b in self.blocks if b.model == model.name]

        def enclosing_instances(b: BlockInstance) -> list[BlockInstance]:
            return [o for o in mine if o is not b and b.instance.startswith(o.instance + "_")]

        # Outer instances before the ones inside them; otherwise in the order lowered.
        instances = sorted(mine, key=lambda b: len(enclosing_instances(b)))
        for b in instances:
            outer = sorted(enclosing_instances(b), key=lambda o: len(o.instance))
            enclosing = f"{prefix}{outer[-1].instance}" if outer else parent
            members = [n for n in model.nodes if self._member(b, n.name, n.span)]
            params, macs = self.params(model.name), self.macs(model.name)
            counts = [macs.get(n.name) for n in members]
            self.diagram.clusters.append(
                Cluster(
                    id=f"{prefix}{b.instance}",
                    name=b.instance,
                    text=b.text,
                    kind="block",
                    parent=enclosing,
                    span=b.span,
                    params=sum(params.get(n.name, 0) for n in members),
                    macs=None if None in counts else sum(c or 0 for c in counts),
                    source=self.source_line(b.span),
                )
            )
        return instances

    @staticmethod
    def _member(b: BlockInstance, name: str, span: Span | None) -> bool:
        # The lowering prefixes the nodes of an instance with its name; the span (in
        # the block's definition) tells them from a node the user named alike.
        return name.startswith(b.instance + "_") and _contains(b.definition, span)

    def cluster_of(
        self,
        name: str,
        span: Span | None,
        instances: list[BlockInstance],
        prefix: str,
        parent: str | None,
    ) -> tuple[str | None, str]:
        """The cluster a node is drawn in, and its name there."""
        for b in reversed(instances):  # the innermost instance first
            if self._member(b, name, span):
                return f"{prefix}{b.instance}", name.removeprefix(b.instance + "_")
        return parent, name


def build_diagram(
    program: Program,
    model: str | None = None,
    *,
    blocks: Sequence[BlockInstance] = (),
    source: str | None = None,
    depth: int | None = None,
) -> Diagram:
    """The diagram of a checked model (the program's main model by default).

    ``blocks`` are the block instances the lowering expanded (see
    :func:`nnc.draw.source.block_instances`); ``source`` is the text the spans point
    into, quoted in the details; ``depth`` collapses clusters nested deeper.

    >>> import nnc
    >>> d = build_diagram(nnc.load("examples/autoencoder.nn"))
    >>> [c.label for c in d.clusters]
    ['encoder_1: Encoder', 'decoder_1: Decoder']
    >>> d.box("encoder_1.dense_2").shape
    '[8]'
    """
    m = program.model(model)
    builder = _Builder(program, blocks, source)
    diagram = builder.diagram
    diagram.title = f"model {m.name}"
    bound = {}
    for i in m.inputs:
        diagram.boxes.append(
            Box(
                id=i.name,
                name=i.name,
                kind="input",
                op="input",
                text=f"input {i.name}: {i.type}",
                shape=str(i.type),
                span=i.span,
                source=builder.source_line(i.span),
            )
        )
        bound[i.name] = i.name
    produced = builder.model(m, "", bound, None)
    for k, ref in enumerate(m.outputs):
        out_id = f"output:{k}"
        diagram.boxes.append(
            Box(
                id=out_id,
                name=ref,
                kind="output",
                op="output",
                text=f"output {ref}",
                shape=str(m.value_type(ref)),
            )
        )
        diagram.edges.append((produced[ref], out_id))
    return collapse(diagram, depth) if depth is not None else diagram


def cluster_depth(diagram: Diagram, cluster_id: str | None) -> int:
    """0 for a top-level cluster, 1 for one inside it, and so on."""
    by_id = {c.id: c for c in diagram.clusters}
    level = -1
    while cluster_id is not None:
        level += 1
        cluster_id = by_id[cluster_id].parent
    return level


def collapse(diagram: Diagram, depth: int) -> Diagram:
    """Draw every cluster at nesting level ``depth`` (0: the outermost) as one box."""
    by_id = {c.id: c for c in diagram.clusters}
    folded = [c for c in diagram.clusters if cluster_depth(diagram, c.id) == depth]
    kept = [c for c in diagram.clusters if cluster_depth(diagram, c.id) < depth]

    def owner(cluster: str | None) -> str | None:
        """The collapsed cluster that swallows a box of ``cluster``, if any."""
        while cluster is not None:
            if cluster_depth(diagram, cluster) == depth:
                return cluster
            cluster = by_id[cluster].parent
        return None

    rep: dict[str, str] = {}
    boxes: list[Box] = []
    last_shape: dict[str, str] = {}
    for b in diagram.boxes:
        o = owner(b.cluster)
        rep[b.id] = o or b.id
        if o is None:
            boxes.append(b)
        else:
            last_shape[o] = b.shape
    for c in folded:
        if c.id not in last_shape:
            continue
        boxes.append(
            Box(
                id=c.id,
                name=c.name,
                kind="cluster",
                op=c.kind,
                text=c.text,
                shape=last_shape[c.id],
                params=c.params,
                macs=c.macs,
                span=c.span,
                cluster=c.parent,
            )
        )
    edges = list(dict.fromkeys((rep[s], rep[d]) for s, d in diagram.edges if rep[s] != rep[d]))
    return Diagram(title=diagram.title, boxes=boxes, edges=edges, clusters=kept)
