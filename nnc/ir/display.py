"""How a Program or a Model shows itself in Jupyter, as a hook: the IR imports no
display code.

``Program._repr_html_`` and the other reprs call :func:`show` with the name of a
function of :mod:`nnc.notebook.reprs` (``program_html``, ``model_svg``...); the
function registered here computes it. nnc's root package registers the notebook
layer, imported on the first repr; with nothing registered a repr is None, which
IPython shows as text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# (repr name, the Program or Model) -> its HTML or SVG, or None
Show = Callable[[str, Any], "str | None"]

_show: Show | None = None


def register(show: Show) -> None:
    """Let ``show(name, obj)`` compute the reprs of Program and Model."""
    global _show
    _show = show


def show(name: str, obj: Any) -> str | None:
    """The repr ``name`` of ``obj`` from the registered display layer (None without)."""
    return _show(name, obj) if _show is not None else None
