"""Passes over the IR. Each pass is a plain function Program -> Program.

- :func:`infer_shapes`: type every node (and order nodes topologically);
- :func:`validate`: names, outputs, and recipes against models and data;
- :func:`check_resources`: refuse specs over the memory budget;
- :func:`check`: all three, in order; what ``nnc check`` runs;
- :func:`inline_calls`: flatten models used as layers (a lowering aid for backends).

Analyses (Program -> facts) live beside them: :func:`model_params` and
:func:`count_params`.
"""

from __future__ import annotations

from nnc.ir.passes.infer import infer_shapes, toposort
from nnc.ir.passes.inline import inline_calls
from nnc.ir.passes.params import Param, count_params, model_params
from nnc.ir.passes.resources import check_resources, memory_budget
from nnc.ir.passes.validate import check_identifier, validate
from nnc.ir.program import Program


def check(program: Program, memory_budget: int | None = None) -> Program:
    """Shape inference, validation and resource limits: the checked IR every backend
    lowers from.

    A program this function returned is returned as it is, so that the backends,
    the driver and the verifier may each ask for a checked program without checking
    it again; only the resource limits run again under another memory budget.

    >>> import nnc
    >>> program = nnc.load("examples/xor.nn")
    >>> check(program) is program
    True
    """
    limit = _budget(memory_budget)
    done = program.checked_budget()
    if done is None:
        program = check_resources(validate(infer_shapes(program)), memory_budget)
    elif done != limit:
        program = check_resources(program, memory_budget)
    program.mark_checked(limit)
    return program


def is_checked(program: Program) -> bool:
    """Whether :func:`check` passed this very program (a copy or an edit is not)."""
    return program.checked_budget() is not None


_budget = memory_budget  # the parameter of check() hides the function's name

__all__ = [
    "Param",
    "check",
    "check_identifier",
    "check_resources",
    "count_params",
    "infer_shapes",
    "inline_calls",
    "is_checked",
    "model_params",
    "toposort",
    "validate",
]
