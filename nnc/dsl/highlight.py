"""A Pygments lexer for ``.nn`` files, so documentation and notebooks highlight them.

nnc registers it as a Pygments plugin (the ``pygments.lexers`` entry point), so once
nnc is installed ``pygmentize -l nnc``, Sphinx and MkDocs code blocks marked ``nn``
or ``nnc``, and Jupyter pick it up. Layer names come from the op registry and recipe
keys from the recipe classes, so the highlighting follows the language.

>>> from pygments import lex
>>> tokens = lex("model M { input x: [2]  dense(5) }", NncLexer())
>>> [(str(t), v) for t, v in tokens if v.strip()][:3]
[('Token.Keyword.Declaration', 'model'), ('Token.Name.Class', 'M'), ('Token.Punctuation', '{')]
"""

from __future__ import annotations

from typing import ClassVar

from pygments.lexer import RegexLexer, bygroups, include, words
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Whitespace,
)

from nnc.ir.ops import OPS
from nnc.ir.training import CdRecipe, GanRecipe, Recipe

# `split` is notation (one slice per output), a layer name of the language all the same.
LAYERS = tuple(sorted({*(name for name in OPS if name != "call"), "split"}))
RECIPE_KEYS = tuple(
    sorted(
        {
            key
            for cls in (Recipe, GanRecipe, CdRecipe)
            for key in cls.model_fields
            if key not in ("kind", "name", "span", "setting_spans")
        }
    )
)
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


class NncLexer(RegexLexer):
    """Lexer for nnc's ``.nn`` network specs."""

    name = "nnc"
    aliases: ClassVar[list[str]] = ["nnc", "nn"]
    filenames: ClassVar[list[str]] = ["*.nn"]
    mimetypes: ClassVar[list[str]] = ["text/x-nnc"]

    tokens: ClassVar[dict] = {
        "common": [
            (r"\s+", Whitespace),
            (r"#.*?$", Comment.Single),
            (r'"(\\["\\nt]|[^"\\\n])*"', String.Double),
            (r"[+-]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", Number.Float),
            (r"[+-]?[0-9]+[eE][+-]?[0-9]+", Number.Float),
            (r"[+-]?[0-9]+", Number.Integer),
            (words(("true", "false"), suffix=r"\b"), Keyword.Constant),
            (r"\|>", Operator),
            (r"[-+*/@%=:<>|?!.~^&]", Operator),
            (r"[()\[\],]", Punctuation),
        ],
        "root": [
            include("common"),
            (
                rf"(model)(\s+)({IDENT})",
                bygroups(Keyword.Declaration, Whitespace, Name.Class),
                "head",
            ),
            (
                rf"(block)(\s+)({IDENT})",
                bygroups(Keyword.Declaration, Whitespace, Name.Function),
                "head",
            ),
            (
                rf"(train)(\s+)({IDENT})",
                bygroups(Keyword.Declaration, Whitespace, Name.Class),
                "recipe-head",
            ),
            (r"\{", Punctuation, "body"),
            (IDENT, Name),
        ],
        # Between a model's or block's name and its brace: a block's parameters.
        "head": [
            (r"\{", Punctuation, ("#pop", "body")),
            include("common"),
            (IDENT, Name.Variable),
        ],
        "recipe-head": [
            (r"\{", Punctuation, ("#pop", "recipe")),
            include("common"),
            (IDENT, Name),
        ],
        "body": [
            include("common"),
            (r"\{", Punctuation, "#push"),
            (r"\}", Punctuation, "#pop"),
            (words(("input", "output"), suffix=r"\b"), Keyword),
            (words(LAYERS, suffix=r"\b"), Name.Builtin),
            (IDENT, Name),
        ],
        # A recipe key starts its line: a newline is matched alone so the next rule
        # sees the start of the line.
        "recipe": [
            (r"\n", Whitespace),
            (
                rf"(^[ \t]*)({'|'.join(RECIPE_KEYS)})\b",
                bygroups(Whitespace, Name.Attribute),
            ),
            (r"\}", Punctuation, "#pop"),
            include("common"),
            (IDENT, Name),
        ],
    }


__all__ = ["LAYERS", "RECIPE_KEYS", "NncLexer"]
