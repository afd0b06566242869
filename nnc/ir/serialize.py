"""JSON round trip of the IR: ``loads_json(p.to_json()) == p``."""

from __future__ import annotations

from pydantic import ValidationError

from nnc.errors import NncError
from nnc.ir.program import Program


def loads_json(text: str | bytes) -> Program:
    """Read a program written by :meth:`Program.to_json`; errors name the bad field."""
    try:
        return Program.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise NncError(
            f"invalid IR JSON at {where or 'top level'}: {first.get('msg', 'invalid value')}"
            + (f" ({exc.error_count()} errors)" if exc.error_count() > 1 else "")
        ) from None
