"""What the language server knows about one ``.nn`` document, without any protocol:
its errors, its checked program and syntax tree, and the answers to hover,
go-to-definition and document-symbol requests.

Positions here are nnc's: 1-based lines and columns counted in characters. The
server (:mod:`nnc.lsp.server`) converts them to the editor's.

>>> a = Analysis("model M {\\n    input x: [4]\\n    dense(10)\\n}\\n")
>>> print(a.hover(3, 6))
**dense_1** `dense(10)` → `[10]`
<BLANKLINE>
50 parameters · 40 MACs per sample
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from nnc.dsl import ast
from nnc.errors import NncError, Span, source_lines
from nnc.ir.base import Op
from nnc.ir.program import Model, Program

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def contains(span: Span | None, line: int, col: int) -> bool:
    """Whether (line, col) lies in ``span`` (its end column included, so the cursor
    just after a word still hovers it)."""
    if span is None:
        return False
    return (span.line, span.col) <= (line, col) <= (span.end_line, span.end_col)


def _extent(span: Span) -> tuple[int, int]:
    return (span.end_line - span.line, span.end_col - span.col)


def word_at(text: str, line: int, col: int) -> str | None:
    """The identifier under (or just before) the cursor."""
    lines = source_lines(text)
    if not 1 <= line <= len(lines):
        return None
    for m in _WORD.finditer(lines[line - 1]):
        if m.start() + 1 <= col <= m.end() + 1:
            return m.group()
    return None


@dataclass(frozen=True)
class Symbol:
    """A document symbol: a model, block or recipe and what it declares."""

    name: str
    kind: str  # "model", "block", "train", "input", "tensor", "setting"
    span: Span
    selection: Span
    children: tuple[Symbol, ...] = ()


def value_text(value: Any, key: str = "") -> str:
    """A resolved setting with every field spelled out: ``adam(lr = 0.005, beta1 = 0.9,
    ...)``, so hover shows the defaults the spec left implicit."""
    from nnc.dsl.printer import expr_text
    from nnc.dsl.unparse import value_expr

    if isinstance(value, BaseModel):
        fields = [k for k in type(value).model_fields if k not in ("kind", "span")]
        args = ", ".join(f"{k} = {value_text(getattr(value, k), k)}" for k in fields)
        kind = getattr(value, "kind", None)
        return f"{kind}({args})" if kind else args
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    return expr_text(value_expr(value, key))


class Analysis:
    """One version of a document, analysed once: ``errors`` (every independent one,
    as ``nnc check`` reports them), the syntax tree, and the answers."""

    def __init__(self, text: str, filename: str = "<string>"):
        from nnc.dsl.diagnose import diagnose

        self.text = text
        self.filename = filename
        diagnosis = diagnose(text, filename)
        self.program: Program | None = diagnosis.program
        self.errors: list[NncError] = diagnosis.errors
        self.tree: ast.File | None = diagnosis.tree

    # -- go to definition ----------------------------------------------------------

    def definition(self, line: int, col: int) -> Span | None:
        """Where the model or block named under the cursor is defined."""
        name = word_at(self.text, line, col)
        if name is None or self.tree is None:
            return None
        for item in self.tree.items:
            if isinstance(item, ast.ModelDef | ast.BlockDef) and item.name == name:
                return item.name_span
        return None

    # -- document symbols ----------------------------------------------------------

    def symbols(self) -> list[Symbol]:
        if self.tree is None:
            return []
        out = []
        for item in self.tree.items:
            if isinstance(item, ast.TrainDef):
                settings = tuple(
                    Symbol(s.key, "setting", s.span, s.key_span) for s in item.settings
                )
                out.append(Symbol(item.name, "train", item.span, item.name_span, settings))
                continue
            kind = "model" if isinstance(item, ast.ModelDef) else "block"
            children = []
            for stmt in item.body:
                if isinstance(stmt, ast.InputDecl):
                    children.append(Symbol(stmt.name, "input", stmt.span, stmt.name_span))
                elif isinstance(stmt, ast.Assign):
                    for target in stmt.targets:
                        children.append(Symbol(target, "tensor", stmt.span, stmt.span))
            out.append(Symbol(item.name, kind, item.span, item.name_span, tuple(children)))
        return out

    # -- hover ---------------------------------------------------------------------

    def hover(self, line: int, col: int) -> str | None:
        """Markdown for what is under the cursor: a layer's output shape, parameters
        and MACs (every instance, inside a block), a model's or block instance's
        totals, a recipe setting's resolved value."""
        if self.program is None or self.tree is None:
            return None
        item = next((i for i in self.tree.items if contains(i.span, line, col)), None)
        if item is None:
            return None
        if isinstance(item, ast.TrainDef):
            return self._hover_recipe(item, line, col)
        if isinstance(item, ast.ModelDef) and contains(item.name_span, line, col):
            return self._hover_model(self.program.models[item.name])
        instance = self._hover_block_call(line, col)
        if instance is not None:
            return instance
        return self._hover_node(line, col)

    def _hover_recipe(self, item: ast.TrainDef, line: int, col: int) -> str | None:
        assert self.program is not None
        recipe = self.program.recipes.get(item.name)
        if recipe is None:
            return None
        for s in item.settings:
            if contains(s.span, line, col):
                value = getattr(recipe, s.key, None)
                return f"**{s.key}** = `{value_text(value, s.key)}`"
        if contains(item.name_span, line, col):
            skip = ("kind", "name", "span", "setting_spans")
            rows = [
                f"- {k} = `{value_text(getattr(recipe, k), k)}`"
                for k in type(recipe).model_fields
                if k not in skip
            ]
            return f"**train {item.name}**\n\n" + "\n".join(rows)
        return None

    def _hover_model(self, model: Model) -> str:
        from nnc.ir.flops import count_macs
        from nnc.ir.passes import count_params

        assert self.program is not None
        ins = ", ".join(f"{i.name}: `{i.type}`" for i in model.inputs)
        outs = ", ".join(f"`{t}`" for t in model.output_types)
        macs = count_macs(self.program, model).total
        cost = f"{macs:,} MACs per sample" if macs is not None else "MACs depend on symbolic dims"
        return (
            f"**model {model.name}**: {ins} → {outs}\n\n"
            f"{len(model.nodes)} nodes · {count_params(self.program, model):,} parameters · "
            f"{cost}"
        )

    def _hover_block_call(self, line: int, col: int) -> str | None:
        from nnc.draw.diagram import build_diagram
        from nnc.draw.source import block_instances

        assert self.program is not None
        hits = [b for b in block_instances(self.text, self.filename) if contains(b.span, line, col)]
        if not hits:
            return None
        b = min(hits, key=lambda h: _extent(h.span) if h.span else (0, 0))
        diagram = build_diagram(self.program, b.model, blocks=[b])
        cluster = next(c for c in diagram.clusters if c.id == b.instance)
        members = [x for x in diagram.boxes if x.cluster == cluster.id]
        shape = members[-1].shape if members else "?"
        macs = f"{cluster.macs:,}" if cluster.macs is not None else "symbolic"
        return (
            f"**{b.instance}** `{b.text}` → `{shape}`\n\n"
            f"block {b.block}: {len(members)} nodes · {cluster.params:,} parameters · "
            f"{macs} MACs per sample"
        )

    def _hover_node(self, line: int, col: int) -> str | None:
        assert self.program is not None
        hits: list[tuple[Model, Op]] = []
        inputs = []
        for m in self.program.models.values():
            hits += [(m, n) for n in m.nodes if contains(n.span, line, col)]
            inputs += [(m, i) for i in m.inputs if contains(i.span, line, col)]
        if not hits:
            if inputs:
                m, i = inputs[0]
                return f"**input {i.name}** of {m.name}: `{i.type}`"
            return None
        smallest = min(_extent(n.span) for _, n in hits if n.span is not None)
        chosen = [(m, n) for m, n in hits if n.span is not None and _extent(n.span) == smallest]
        parts = [self._node_text(m, n) for m, n in chosen[:8]]
        if len(chosen) > 8:
            parts.append(f"… and {len(chosen) - 8} more instances")
        return "\n\n---\n\n".join(parts)

    def _node_text(self, model: Model, node: Op) -> str:
        from nnc.dsl.unparse import node_text
        from nnc.ir.flops import count_macs
        from nnc.ir.ops.graph import Call
        from nnc.ir.passes import count_params

        assert self.program is not None
        shapes = ", ".join(f"`{t}`" for t in node.outs)
        if isinstance(node, Call):
            params = count_params(self.program, node.model)
            macs = count_macs(self.program, node.model).total
            head = f"**{node.name}** model `{node.model}` → {shapes}"
        else:
            ins = [model.value_type(r) for r in node.inputs]
            specs = [s for s in node.param_specs(ins) if not s.buffer]
            params = sum(s.size for s in specs)
            macs = count_macs(self.program, model).per_node[node.name]
            head = f"**{node.name}** `{node_text(node)}` → {shapes}"
        where = f" (in {model.name})" if len(self.program.models) > 1 else ""
        cost = f"{macs:,} MACs per sample" if macs is not None else "MACs depend on symbolic dims"
        return f"{head}{where}\n\n{params:,} parameters · {cost}"
