"""The equivalence matrix runs many tiny models: see ``one_torch_thread``."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(one_torch_thread: None) -> None:
    """Every module of the matrix runs with one torch thread."""
