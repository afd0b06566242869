"""``nnc lsp`` started as a subprocess and spoken to over JSON-RPC as an editor does:
diagnostics at ``nnc check``'s line and column, hover, completion, go to definition,
formatting, document symbols, and a change that fixes the error clearing it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from nnc.dsl import format_source
from tests.conftest import EXAMPLES, run_nnc

pytest.importorskip("pygls")

from tests.lsp.client import LspClient

BROKEN = "model M {\n    input x: [1, 8, 8]\n    conv2d(4, 3) relu\n    dense(10)\n}\n"
TWO_ERRORS = (
    "model A {\n    input x: [4]\n    dense(0)\n}\n\nmodel B {\n    input y: [4]\n    desne(3)\n}\n"
)
RESNET = (EXAMPLES / "resnet_block.nn").read_text()


def position(text: str, needle: str, offset: int = 0) -> dict[str, int]:
    """The LSP position (0-based) of the first ``needle`` in ``text``, plus ``offset``."""
    before = text[: text.index(needle) + offset]
    return {"line": before.count("\n"), "character": len(before) - (before.rfind("\n") + 1)}


@pytest.fixture(scope="module")
def client() -> Iterator[LspClient]:
    c = LspClient()
    c.initialize()
    yield c
    assert c.close() == 0


def doc(uri: str) -> dict[str, str]:
    return {"uri": uri}


def test_diagnostic_range_is_nnc_checks_line_and_column(client: LspClient, tmp_path: Path) -> None:
    spec = tmp_path / "broken.nn"
    spec.write_text(BROKEN)
    checked = run_nnc("check", str(spec))
    line, col = map(
        int, re.search(rf"{re.escape(str(spec))}:(\d+):(\d+): error", checked.stderr).groups()
    )
    uri = spec.as_uri()
    client.open(uri, BROKEN)
    (d,) = client.diagnostics(uri)
    assert (d["range"]["start"]["line"] + 1, d["range"]["start"]["character"] + 1) == (line, col)
    assert d["range"]["end"] == {"line": 3, "character": 13}  # the whole of dense(10)
    assert d["message"].startswith("dense: expects a vector")
    assert d["severity"] == 1 and d["source"] == "nnc"
    # The fix clears it.
    fixed = BROKEN.replace("relu\n", "relu\n    flatten\n")
    client.change(uri, fixed, 2)
    assert client.diagnostics(uri, 2) == []


def test_every_independent_error_is_reported(client: LspClient) -> None:
    uri = "file:///two_errors.nn"
    client.open(uri, TWO_ERRORS)
    found = client.diagnostics(uri)
    starts = [(d["range"]["start"]["line"], d["range"]["start"]["character"]) for d in found]
    assert starts == [(2, 10), (7, 4)]
    assert "did you mean 'dense'" in found[1]["message"]


def test_an_input_the_parser_refuses_to_build_is_a_diagnostic(client: LspClient) -> None:
    # Not a syntax error: the parser reads the literal, then refuses it (a limit).
    text = "model M {\n    input x: [4]\n    dense(1" + "0" * 40 + ")\n}\n"
    uri = "file:///huge_literal.nn"
    client.open(uri, text)
    (d,) = client.diagnostics(uri)
    assert d["range"]["start"] == {"line": 2, "character": 10}
    assert d["message"] == "integer literal with 41 digits; at most 30 are allowed"
    assert d["code"] == "ResourceError"


def test_hover_gives_shape_and_parameters(client: LspClient) -> None:
    uri = "file:///resnet.nn"
    client.open(uri, RESNET)
    assert client.diagnostics(uri) == []

    def hover(needle: str, offset: int = 1) -> str:
        result = client.request(
            "textDocument/hover",
            {"textDocument": doc(uri), "position": position(RESNET, needle, offset)},
        )
        return result["contents"]["value"]

    # dense(10) after global_avg_pool's 16 features: 16 * 10 + 10 parameters.
    assert hover("dense(10)") == (
        "**dense_1** `dense(10)` → `[10]`\n\n170 parameters · 160 MACs per sample"
    )
    # Inside the block: one entry per instance.
    inner = hover("batchnorm |> relu")
    assert inner.count("`batchnorm` → `[16, 8, 8]`") == 2
    assert "residual_1_batchnorm_1" in inner and "residual_2_batchnorm_1" in inner
    assert "32 parameters" in inner
    # A block call: the instance's totals.
    call = hover("residual(16)\n    residual(16)")
    assert call.startswith("**residual_1** `residual(16)` → `[16, 8, 8]`")
    assert "4,704 parameters" in call
    # A recipe setting: its resolved value, defaults spelled out.
    assert hover("adam") == (
        "**optimizer** = `adam(lr = 0.005, beta1 = 0.9, beta2 = 0.999, eps = 1e-08)`"
    )
    assert "from_logits = true" in hover("cross_entropy")


def test_completion_after_den_offers_dense(client: LspClient) -> None:
    text = "model M {\n    input x: [4]\n    den\n}\n"
    uri = "file:///typing.nn"
    client.open(uri, text)
    result = client.request(
        "textDocument/completion",
        {"textDocument": doc(uri), "position": {"line": 2, "character": 7}},
    )
    assert [i["label"] for i in result["items"]] == ["dense"]
    inside = client.request(
        "textDocument/completion",
        {"textDocument": doc(uri), "position": {"line": 2, "character": 4}},
    )
    labels = [i["label"] for i in inside["items"]]
    assert {"dense", "conv2d", "relu", "input", "output"} <= set(labels)


AUTOENCODER = (EXAMPLES / "autoencoder.nn").read_text()


def labels_at(client: LspClient, uri: str, text: str, needle: str) -> list[str]:
    """The completion labels offered just after ``needle`` (opened as ``text``)."""
    client.open(uri, text)
    result = client.request(
        "textDocument/completion",
        {"textDocument": doc(uri), "position": position(text, needle, len(needle))},
    )
    return [i["label"] for i in result["items"]]


def test_completion_of_arguments_recipe_keys_and_definitions(client: LspClient) -> None:
    # Argument names inside a layer's parentheses.
    conv = "model M {\n    input x: [1, 8, 8]\n    conv2d(4, ker"
    assert labels_at(client, "file:///args.nn", conv, "ker") == ["kernel"]
    # A recipe key at the start of a line of a train body, and the values a key takes.
    keys = AUTOENCODER.replace("    epochs     40\n", "    ep\n")
    assert labels_at(client, "file:///keys.nn", keys, "    ep") == ["epochs"]
    adam = AUTOENCODER.replace("adam(lr = 0.005)", "adam(be")
    assert labels_at(client, "file:///adam.nn", adam, "adam(be") == ["beta1", "beta2"]
    # The file's models, offered in another model's body (never the model itself).
    models = AUTOENCODER.replace("    Encoder\n    Decoder\n", "    Enc\n    Decoder\n")
    assert labels_at(client, "file:///models.nn", models, "    Enc") == ["Encoder"]
    # The file's blocks ("resi" offers the resize layer too).
    blocks = RESNET.replace("    residual(16)\n    residual(16)\n", "    resid\n")
    assert labels_at(client, "file:///blocks.nn", blocks, "    resid") == ["residual"]


@pytest.mark.parametrize(
    ("text", "use", "offset", "defined"),
    [
        (RESNET, "residual(16)", 3, "residual(c)"),  # a block call
        (AUTOENCODER, "    Decoder\n", 6, "Decoder {"),  # a model used as a layer
    ],
    ids=["block", "model"],
)
def test_go_to_definition(
    client: LspClient, text: str, use: str, offset: int, defined: str
) -> None:
    uri = f"file:///definition_{text.index(use)}.nn"
    client.open(uri, text)
    result = client.request(
        "textDocument/definition",
        {"textDocument": doc(uri), "position": position(text, use, offset)},
    )
    start = position(text, defined)
    name = re.match(r"\w+", defined)
    assert name is not None
    end = {**start, "character": start["character"] + len(name.group())}
    assert result == {"uri": uri, "range": {"start": start, "end": end}}


def test_formatting_is_nnc_fmt(client: LspClient) -> None:
    messy = "model   M{input x:[4]\n dense( 3 )  relu   # keep me\n}\n"
    uri = "file:///messy.nn"
    client.open(uri, messy)
    (edit,) = client.request(
        "textDocument/formatting",
        {"textDocument": doc(uri), "options": {"tabSize": 4, "insertSpaces": True}},
    )
    assert edit["newText"] == format_source(messy)
    assert "# keep me" in edit["newText"]
    assert edit["range"]["start"] == {"line": 0, "character": 0}


def test_document_symbols(client: LspClient) -> None:
    uri = "file:///symbols.nn"
    client.open(uri, RESNET)
    symbols = client.request("textDocument/documentSymbol", {"textDocument": doc(uri)})
    assert [(s["name"], s["kind"]) for s in symbols] == [
        ("residual", 12),  # function
        ("ResNet", 5),  # class
        ("ResNet", 24),  # event: the train recipe
    ]
    assert [c["name"] for c in symbols[0]["children"]] == ["x", "y", "y"]
    assert "optimizer" in [c["name"] for c in symbols[2]["children"]]


def test_import_nnc_loads_no_editor_or_notebook_package() -> None:
    import subprocess
    import sys

    code = (
        "import sys, nnc, nnc.cli.main\n"
        "nnc.cli.main.build_parser()\n"
        "print(sorted(m for m in ('pygls', 'lsprotocol', 'IPython', 'selenium', 'nnc.draw',"
        " 'nnc.lsp', 'nnc.notebook') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
