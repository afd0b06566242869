"""The parser's LALR tables, cached as plain JSON.

Building the strict LALR(1) parser from ``grammar.lark`` takes about 0.25 s, too long
for every ``nnc check``. The tables it produces are saved in ``grammar_tables.json``
(JSON, never pickle) together with a hash of the grammar, the options and the Lark
version; a stale or missing file falls back to building the parser. Regenerate with
``python scripts/regen_grammar_tables.py``; a test fails when the file is stale.

Why JSON and not lark's own cache: that is a pickle, and loading one runs whatever
it names. Why not a generated Python module of literals (tried for issue 23): from
bytecode it loads 0.7 ms faster, but without bytecode (``PYTHONDONTWRITEBYTECODE``,
a read-only install) compiling its 120 KB costs 30 ms on every start.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

GRAMMAR = Path(__file__).with_name("grammar.lark")
TABLES = Path(__file__).with_name("grammar_tables.json")
LARK_OPTIONS: dict[str, Any] = {
    "parser": "lalr",
    "strict": True,
    "propagate_positions": True,
    "maybe_placeholders": True,
}


def grammar_hash(grammar: str) -> str:
    import lark

    return hashlib.sha256(f"{lark.__version__}\n{LARK_OPTIONS}\n{grammar}".encode()).hexdigest()


def build_tables() -> dict[str, Any]:
    """Build the strict LALR parser and return its tables as JSON-able data."""
    from lark import Lark
    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    grammar = GRAMMAR.read_text(encoding="utf-8")
    parser = Lark(grammar, **LARK_OPTIONS)
    data, memo = parser.memo_serialize([TerminalDef, Rule])
    return {"grammar_sha256": grammar_hash(grammar), "data": _encode(data), "memo": _encode(memo)}


def load_tables(grammar: str) -> dict[str, Any] | None:
    try:
        raw = json.loads(TABLES.read_text(encoding="utf-8"), object_hook=_decode_object)
    except (OSError, ValueError):
        return None
    if raw.get("grammar_sha256") != grammar_hash(grammar):
        return None
    return {"data": raw["data"], "memo": raw["memo"]}


def _encode(value: Any) -> Any:
    """JSON keeps neither tuples nor int keys; tag them."""
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: _encode(v) for k, v in value.items()}
        return {"__items__": [[_encode(k), _encode(v)] for k, v in value.items()]}
    return value


def _decode_object(value: dict[str, Any]) -> Any:
    """The inverse of :func:`_encode`, as json's hook for each object read (inside
    out, so what it holds is decoded already): a third of the time of a second pass
    over the decoded tables."""
    if "__tuple__" in value:
        return tuple(value["__tuple__"])
    if "__items__" in value:
        return dict(value["__items__"])
    return value


def write_tables() -> Path:
    TABLES.write_text(json.dumps(build_tables(), separators=(",", ":")) + "\n", encoding="utf-8")
    return TABLES
