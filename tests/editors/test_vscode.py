"""The VS Code extension folder: its manifest points at files that exist, the TextMate
grammar's regexes compile, its layer names and recipe keys are nnc's, and it gives a
scope to every character of every example."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from nnc.dsl.highlight import LAYERS, RECIPE_KEYS
from tests.conftest import EXAMPLES, ROOT

VSCODE = ROOT / "editors" / "vscode"
MANIFEST = json.loads((VSCODE / "package.json").read_text())
GRAMMAR = json.loads((VSCODE / "syntaxes" / "nnc.tmLanguage.json").read_text())


def test_manifest_files_exist_and_agree() -> None:
    (language,) = MANIFEST["contributes"]["languages"]
    (grammar,) = MANIFEST["contributes"]["grammars"]
    assert language["id"] == grammar["language"] == "nnc"
    assert language["extensions"] == [".nn"]
    assert grammar["scopeName"] == GRAMMAR["scopeName"] == "source.nnc"
    for path in (MANIFEST["main"], language["configuration"], grammar["path"]):
        assert (VSCODE / path).is_file(), path
    assert MANIFEST["activationEvents"] == ["onLanguage:nnc"]
    assert "vscode-languageclient" in MANIFEST["dependencies"]
    client = (VSCODE / MANIFEST["main"]).read_text()
    assert 'args: ["lsp"]' in client
    json.loads((VSCODE / language["configuration"]).read_text())


def _regexes(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node[k] for k in ("match", "begin", "end") if k in node]
        return found + [r for v in node.values() for r in _regexes(v)]
    if isinstance(node, list):
        return [r for v in node for r in _regexes(v)]
    return []


def test_every_regex_compiles() -> None:
    regexes = _regexes(GRAMMAR)
    assert len(regexes) >= 12
    for r in regexes:
        re.compile(r)


def _alternatives(pattern: str) -> set[str]:
    return set(re.search(r"\(([a-z0-9_|]+)\)", pattern).group(1).split("|"))


def test_layer_names_and_recipe_keys_are_nncs() -> None:
    common = GRAMMAR["repository"]["common"]["patterns"]
    layers = next(p for p in common if p.get("name") == "support.function.layer.nnc")
    assert _alternatives(layers["match"]) == set(LAYERS)
    keys = GRAMMAR["repository"]["train"]["patterns"][1]["match"]
    assert _alternatives(keys) == set(RECIPE_KEYS)


def _scopes(line: str, patterns: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """A greedy first-match scan, as a TextMate engine does for single-line rules;
    a character no rule matches is returned with the scope ``UNMATCHED``."""
    out, i = [], 0
    compiled = [(re.compile(p["match"]), p) for p in patterns]
    while i < len(line):
        if line[i].isspace():
            i += 1
            continue
        for regex, p in compiled:
            m = regex.match(line, i)
            if m and m.end() > i:
                out.append((p.get("name", "captures"), m.group()))
                i = m.end()
                break
        else:
            out.append(("UNMATCHED", line[i]))
            i += 1
    return out


def _flat(names: list[str]) -> list[dict[str, Any]]:
    repo = GRAMMAR["repository"]
    out: list[dict[str, Any]] = []
    for n in names:
        rule = repo[n]
        for p in rule.get("patterns", [rule]):
            if "include" in p:
                out += _flat([p["include"].lstrip("#")])
            elif "match" in p:
                out.append(p)
    return out


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.nn")), ids=lambda p: p.name)
def test_every_character_of_every_example_gets_a_scope(path: Path) -> None:
    train = GRAMMAR["repository"]["train"]
    begin, end = re.compile(train["begin"]), re.compile(train["end"])
    outside = _flat(["comment", "definition", "common"])
    inside = [p for p in train["patterns"] if "match" in p] + _flat(["common"])
    in_train = False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not in_train and begin.search(line):
            in_train, line = True, line[begin.search(line).end() :]
        if in_train and end.search(line.split("#")[0]):
            in_train, line = False, ""
        scopes = _scopes(line, inside if in_train else outside)
        assert [s for s in scopes if s[0] == "UNMATCHED"] == [], (number, line)
