"""The .nn snippets in the README and docs/language.md parse; the complete ones check."""

from __future__ import annotations

import re

import pytest

import nnc
from nnc.dsl.parser import parse_file
from tests.conftest import ROOT

FENCE = re.compile(r"```nn\n(.*?)```", re.S)
DOCS = [ROOT / "README.md", ROOT / "docs" / "language.md"]
SNIPPETS = [
    (doc.name, i, block) for doc in DOCS for i, block in enumerate(FENCE.findall(doc.read_text()))
]


@pytest.mark.parametrize(
    ("doc", "index", "block"), SNIPPETS, ids=[f"{d}#{i}" for d, i, _ in SNIPPETS]
)
def test_snippet_parses(doc: str, index: int, block: str) -> None:
    parse_file(block, f"{doc}#{index}")


def test_readme_programs_check() -> None:
    blocks = FENCE.findall((ROOT / "README.md").read_text())
    assert len(blocks) >= 2
    for block in blocks:
        nnc.parse(block)


def test_language_reference_graph_examples_check() -> None:
    text = (ROOT / "docs" / "language.md").read_text()
    checked = 0
    for block in FENCE.findall(text):
        if block.lstrip().startswith(("model", "block")) and "Encoder" not in block:
            nnc.parse(block)
            checked += 1
    assert checked >= 3
