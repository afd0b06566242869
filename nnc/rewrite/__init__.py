"""Rewriting the IR: one traversal, pattern rules, and the standard passes.

- :func:`rewrite`: call a function on every node and apply what it returns;
- :class:`Rule` / :class:`RuleSet`: pattern, then check (a *reason* when a rule does
  not apply), then rewrite;
- standard passes: :func:`strip_dropout`, :func:`fold_batchnorm`,
  :func:`replace_activation`, :func:`freeze`, :func:`set_input_shape`,
  :func:`rename`, :func:`extract`, :func:`insert_after`, :func:`drop_recipes`,
  :func:`replace_head`.

Every rewrite returns a new program, checked again (``nnc.check``), and, when given
canonical weights, the weights rewritten to match: a
:class:`~nnc.rewrite.engine.Rewritten` that unpacks as ``program, weights``. The IR
stays immutable. :mod:`nnc.passes` runs passes in sequence.
"""

from __future__ import annotations

from nnc.rewrite.engine import Context, LogEntry, Replacement, Rewritten, rewrite
from nnc.rewrite.head import replace_head
from nnc.rewrite.inference import fold_batchnorm, replace_activation, strip_dropout
from nnc.rewrite.rules import Match, Rule, RuleSet
from nnc.rewrite.structure import (
    drop_recipes,
    extract,
    freeze,
    insert_after,
    rename,
    set_input_shape,
)

__all__ = [
    "Context",
    "LogEntry",
    "Match",
    "Replacement",
    "Rewritten",
    "Rule",
    "RuleSet",
    "drop_recipes",
    "extract",
    "fold_batchnorm",
    "freeze",
    "insert_after",
    "rename",
    "replace_activation",
    "replace_head",
    "rewrite",
    "set_input_shape",
    "strip_dropout",
]
