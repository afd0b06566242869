"""The Pygments lexer: found through its entry point, no error token in any example or
documented snippet, and the tokens that matter classified."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pygments import lex
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.token import Error, Keyword, Name, Number, String

from nnc.dsl.highlight import LAYERS, NncLexer
from tests.conftest import EXAMPLES, ROOT

FENCE = re.compile(r"```nn\n(.*?)```", re.S)
SOURCES = sorted(EXAMPLES.glob("*.nn")) + sorted((ROOT / "tests" / "draw").glob("*.nn"))
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
SNIPPETS = [
    (f"{doc.relative_to(ROOT)}#{i}", block)
    for doc in DOCS
    for i, block in enumerate(FENCE.findall(doc.read_text()))
]


def errors(text: str) -> list[str]:
    return [value for token, value in lex(text, NncLexer()) if token in Error]


def test_the_entry_point_registers_the_lexer() -> None:
    assert type(get_lexer_by_name("nnc")) is NncLexer
    assert type(get_lexer_by_name("nn")) is NncLexer
    assert type(get_lexer_for_filename("model.nn")) is NncLexer


@pytest.mark.parametrize("path", SOURCES, ids=[p.name for p in SOURCES])
def test_no_error_token_in_any_example(path: Path) -> None:
    assert errors(path.read_text()) == []


@pytest.mark.parametrize(("where", "block"), SNIPPETS, ids=[w for w, _ in SNIPPETS])
def test_no_error_token_in_documented_snippets(where: str, block: str) -> None:
    assert errors(block) == []


def test_a_stray_character_is_an_error_token() -> None:
    assert errors("model M {\n    input x: [2]\n    dense(3) $\n}\n") == ["$"]


def test_token_classes() -> None:
    text = (
        "block res(c) {\n    input x: [c]\n    output relu(x + dense(x, c))\n}\n"
        'train M {\n    data "a.csv"\n    optimizer adam(lr = 1e-3)\n    seed 0  # a comment\n}\n'
    )
    tokens = [(t, v) for t, v in lex(text, NncLexer()) if v.strip()]
    kinds = dict((v, t) for t, v in tokens)
    assert kinds["block"] is Keyword.Declaration and kinds["res"] is Name.Function
    assert kinds["input"] is Keyword and kinds["relu"] is Name.Builtin
    assert kinds["dense"] is Name.Builtin and kinds["x"] is Name
    assert kinds["optimizer"] is Name.Attribute and kinds["data"] is Name.Attribute
    assert kinds['"a.csv"'] in String and kinds["1e-3"] is Number.Float
    assert "dense" in LAYERS and "call" not in LAYERS
