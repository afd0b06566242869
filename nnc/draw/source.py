"""What to draw: a ``.nn`` file (with the block instances its lowering expanded) or
an ONNX file (through the importer)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nnc.draw.diagram import BlockInstance, Diagram, build_diagram
from nnc.dsl import ast
from nnc.errors import NncError, Span, source_lines
from nnc.ir.program import Program


@dataclass(frozen=True)
class Drawable:
    """A checked program, the block instances of its models and the text its spans
    point into (None for an imported ONNX graph)."""

    program: Program
    blocks: tuple[BlockInstance, ...] = ()
    source: str | None = None

    def diagram(self, model: str | None = None, depth: int | None = None) -> Diagram:
        return build_diagram(
            self.program, model, blocks=self.blocks, source=self.source, depth=depth
        )


def _slice(text: str, span: Span) -> str:
    """The source text a single-line span covers (a block call), else its first line."""
    lines = source_lines(text)
    if not 1 <= span.line <= len(lines):
        return ""
    line = lines[span.line - 1]
    end = span.end_col - 1 if span.end_line == span.line else len(line)
    return line[span.col - 1 : end].strip()


def block_instances(text: str, filename: str = "<string>") -> tuple[BlockInstance, ...]:
    """The block instances that lowering ``text`` expands, with their call text."""
    from nnc.dsl.lower import lower
    from nnc.dsl.parser import parse_file

    tree = parse_file(text, filename)
    definitions = {i.name: i.span for i in tree.items if isinstance(i, ast.BlockDef)}
    return tuple(
        BlockInstance(
            model=c.model,
            instance=c.instance,
            block=c.block,
            text=_slice(text, c.span) or c.block,
            span=c.span,
            definition=definitions.get(c.block),
        )
        for c in lower(tree).block_checks
    )


def from_text(text: str, filename: str = "<string>") -> Drawable:
    """A ``.nn`` text, checked, with its block instances."""
    from nnc.dsl import parse

    program = parse(text, filename)
    return Drawable(program, block_instances(text, filename), text)


def load_drawable(path: str | Path) -> Drawable:
    """A ``.nn`` file, or an ``.onnx`` file imported to IR."""
    p = Path(path)
    if p.suffix.lower() == ".onnx":
        from nnc.backends.onnx import import_model

        return Drawable(import_model(p).program)
    from nnc.dsl import load

    program = load(p)  # reports a missing or undecodable file as nnc.load does
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise NncError(f"cannot read {p}: {exc.strerror}") from None
    return Drawable(program, block_instances(text, str(path)), text)
