"""Laying out DOT text with Graphviz's ``dot`` program (Debian's ``graphviz``)."""

from __future__ import annotations

import shutil
import subprocess

from nnc.errors import NncError

FORMATS = ("svg", "png", "html", "dot")
LAYOUT_TIMEOUT_S = 120


class DrawError(NncError):
    """A picture cannot be drawn: Graphviz is missing or failed, or the output kind
    is unknown."""


def graphviz_dot() -> str:
    """The path of Graphviz's ``dot``, or a :class:`DrawError` saying how to get it."""
    found = shutil.which("dot")
    if found is None:
        raise DrawError(
            "Graphviz's 'dot' program is not installed; nnc draws with it",
            hint="install it: apt-get install graphviz (Debian, Ubuntu), brew install "
            "graphviz (macOS), or write the DOT text with -o OUT.dot",
        )
    return found


def layout(dot_text: str, fmt: str) -> bytes:
    """Run ``dot -T<fmt>`` on ``dot_text`` (``svg`` or ``png``)."""
    if fmt not in ("svg", "png"):
        raise DrawError(f"Graphviz output must be svg or png. Received: {fmt}")
    try:
        done = subprocess.run(
            [graphviz_dot(), f"-T{fmt}"],
            input=dot_text.encode("utf-8"),
            capture_output=True,
            timeout=LAYOUT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise DrawError(
            f"Graphviz took longer than {LAYOUT_TIMEOUT_S} s to lay the graph out",
            hint="draw fewer nodes: --depth 0 collapses every block and called model",
        ) from None
    if done.returncode != 0 or not done.stdout:
        detail = done.stderr.decode("utf-8", errors="replace").strip()
        raise DrawError(f"Graphviz failed (exit {done.returncode}): {detail or 'no output'}")
    return done.stdout


def strip_prolog(svg: str) -> str:
    """The ``<svg>`` element alone, without the XML declaration, doctype and comments
    Graphviz writes before it (for inlining in HTML)."""
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg
