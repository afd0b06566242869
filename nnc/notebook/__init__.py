"""nnc in Jupyter: the reprs of Program and Model, and training progress.

``Program._repr_html_`` and ``Model._repr_html_`` show the summary table and the
picture (:mod:`nnc.notebook.reprs`); :class:`NotebookReporter` shows a run of
:func:`nnc.train.train` as one display that updates in place.
"""

from __future__ import annotations

from nnc.notebook.progress import NotebookReporter, in_notebook
from nnc.notebook.reprs import model_html, model_svg, program_html, program_svg

__all__ = [
    "NotebookReporter",
    "in_notebook",
    "model_html",
    "model_svg",
    "program_html",
    "program_svg",
]
