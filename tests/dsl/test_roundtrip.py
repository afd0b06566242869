"""Every example: parse -> format -> parse gives the same IR; JSON round trips; the
source formatter is idempotent and leaves the (canonically written) examples alone."""

from __future__ import annotations

from pathlib import Path

import nnc


def assert_roundtrip(source: str) -> None:
    """parse(format(parse(source))) == parse(source)."""
    program = nnc.parse(source)
    assert nnc.parse(nnc.format(program)) == program


def test_format_roundtrip(example: Path) -> None:
    assert_roundtrip(example.read_text())


def test_resolved_format_roundtrip(example: Path) -> None:
    """The resolved text (recipe.nn, nnc ir) writes every setting and reads back equal."""
    program = nnc.load(example)
    resolved = nnc.format(program, resolved=True)
    assert nnc.parse(resolved) == program
    assert len(resolved) >= len(nnc.format(program))


def test_json_roundtrip(example: Path) -> None:
    program = nnc.load(example)
    assert nnc.loads_json(program.to_json()) == program


def test_examples_are_formatted(example: Path) -> None:
    text = example.read_text()
    assert nnc.format_source(text) == text
