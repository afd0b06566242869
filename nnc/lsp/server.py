"""``nnc lsp``: the language server, over stdio, built on pygls.

Each open document is analysed once per version (:class:`nnc.lsp.analysis.Analysis`):
on open and on every change its diagnostics are published, every independent error
as ``nnc check`` reports it, with the same line and column. Hover, completion, go to
definition, formatting (``nnc fmt``) and document symbols answer from that analysis
(completion from the text alone, so it works while the file does not parse).

Positions: nnc counts characters; editors count UTF-16 code units by default. The
document's position codec converts between the two.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.workspace import TextDocument
from pygls.workspace.position_codec import ServerTextPosition, ServerTextRange

from nnc._version import __version__
from nnc.errors import NncError, Span
from nnc.lsp.analysis import Analysis, Symbol
from nnc.lsp.completion import complete

COMPLETION_KINDS = {
    "layer": lsp.CompletionItemKind.Function,
    "model": lsp.CompletionItemKind.Class,
    "block": lsp.CompletionItemKind.Module,
    "keyword": lsp.CompletionItemKind.Keyword,
    "argument": lsp.CompletionItemKind.Property,
    "value": lsp.CompletionItemKind.EnumMember,
    "setting": lsp.CompletionItemKind.Field,
}
SYMBOL_KINDS = {
    "model": lsp.SymbolKind.Class,
    "block": lsp.SymbolKind.Function,
    "train": lsp.SymbolKind.Event,
    "input": lsp.SymbolKind.Variable,
    "tensor": lsp.SymbolKind.Variable,
    "setting": lsp.SymbolKind.Property,
}


class NncLanguageServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("nnc", __version__)
        self.analyses: dict[str, tuple[int | None, Analysis]] = {}

    def analysis(self, doc: TextDocument) -> Analysis:
        """The analysis of the document's current text (cached per version)."""
        cached = self.analyses.get(doc.uri)
        if cached is not None and cached[1].text == doc.source:
            return cached[1]
        analysis = Analysis(doc.source, _filename(doc))
        self.analyses[doc.uri] = (doc.version, analysis)
        return analysis


def _filename(doc: TextDocument) -> str:
    return doc.path or doc.uri


def to_range(doc: TextDocument, span: Span) -> lsp.Range:
    """An nnc span (1-based, characters, end exclusive) as an LSP range."""
    server_range = ServerTextRange(
        ServerTextPosition(span.line - 1, span.col - 1),
        ServerTextPosition(span.end_line - 1, span.end_col - 1),
    )
    return doc.range_to_client_units(server_range)


def nnc_position(doc: TextDocument, position: lsp.Position) -> tuple[int, int]:
    """An LSP position as nnc's 1-based (line, column) in characters."""
    p = doc.position_from_client_units(position)
    return p.line + 1, p.character + 1


def at(
    ls: NncLanguageServer, params: lsp.HoverParams | lsp.CompletionParams | lsp.DefinitionParams
) -> tuple[TextDocument, int, int]:
    """The document a request is about, and its position as nnc's (line, column)."""
    doc = ls.workspace.get_text_document(params.text_document.uri)
    return (doc, *nnc_position(doc, params.position))


def diagnostic(doc: TextDocument, err: NncError) -> lsp.Diagnostic:
    if err.span is not None:
        where = to_range(doc, err.span)
    else:  # an error about the file as a whole: its first line
        where = lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0))
    message = err.message + (f"\n{err.hint}" if err.hint else "")
    return lsp.Diagnostic(
        range=where,
        message=message,
        severity=lsp.DiagnosticSeverity.Error,
        source="nnc",
        code=type(err).__name__,
    )


server = NncLanguageServer()


def publish(ls: NncLanguageServer, uri: str) -> None:
    doc = ls.workspace.get_text_document(uri)
    analysis = ls.analysis(doc)
    ls.text_document_publish_diagnostics(
        lsp.PublishDiagnosticsParams(
            uri=uri,
            version=doc.version,
            diagnostics=[diagnostic(doc, e) for e in analysis.errors],
        )
    )


@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: NncLanguageServer, params: lsp.DidOpenTextDocumentParams) -> None:
    publish(ls, params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: NncLanguageServer, params: lsp.DidChangeTextDocumentParams) -> None:
    publish(ls, params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: NncLanguageServer, params: lsp.DidCloseTextDocumentParams) -> None:
    ls.analyses.pop(params.text_document.uri, None)
    ls.text_document_publish_diagnostics(
        lsp.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[])
    )


@server.feature(lsp.TEXT_DOCUMENT_HOVER)
def hover(ls: NncLanguageServer, params: lsp.HoverParams) -> lsp.Hover | None:
    doc, line, col = at(ls, params)
    text = ls.analysis(doc).hover(line, col)
    if text is None:
        return None
    return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text))


@server.feature(
    lsp.TEXT_DOCUMENT_COMPLETION,
    lsp.CompletionOptions(trigger_characters=["(", "=", " "]),
)
def completion(ls: NncLanguageServer, params: lsp.CompletionParams) -> lsp.CompletionList:
    doc, line, col = at(ls, params)
    items = [
        lsp.CompletionItem(label=c.label, kind=COMPLETION_KINDS[c.kind], detail=c.detail or None)
        for c in complete(doc.source, line, col)
    ]
    return lsp.CompletionList(is_incomplete=False, items=items)


@server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
def definition(ls: NncLanguageServer, params: lsp.DefinitionParams) -> lsp.Location | None:
    doc, line, col = at(ls, params)
    span = ls.analysis(doc).definition(line, col)
    if span is None:
        return None
    return lsp.Location(uri=doc.uri, range=to_range(doc, span))


@server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
def formatting(
    ls: NncLanguageServer, params: lsp.DocumentFormattingParams
) -> list[lsp.TextEdit] | None:
    from nnc.dsl import format_source

    doc = ls.workspace.get_text_document(params.text_document.uri)
    try:
        formatted = format_source(doc.source, _filename(doc))
    except NncError:
        return None  # the diagnostics already say why the file cannot be formatted
    if formatted == doc.source:
        return []
    lines = doc.lines
    end = lsp.Position(len(lines), 0)
    return [lsp.TextEdit(range=lsp.Range(lsp.Position(0, 0), end), new_text=formatted)]


@server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def document_symbols(
    ls: NncLanguageServer, params: lsp.DocumentSymbolParams
) -> list[lsp.DocumentSymbol]:
    doc = ls.workspace.get_text_document(params.text_document.uri)
    return [_symbol(doc, s) for s in ls.analysis(doc).symbols()]


def _symbol(doc: TextDocument, s: Symbol) -> lsp.DocumentSymbol:
    return lsp.DocumentSymbol(
        name=s.name,
        kind=SYMBOL_KINDS[s.kind],
        range=to_range(doc, s.span),
        selection_range=to_range(doc, s.selection),
        children=[_symbol(doc, c) for c in s.children],
    )


def main(**_: Any) -> None:
    """Serve on stdin and stdout until the editor says exit."""
    server.start_io()
