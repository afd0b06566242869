"""Fixtures of the PyTorch backend's tests."""

from __future__ import annotations

import pytest

from tests.conftest import require


@pytest.fixture
def needs_torch() -> None:
    """Skip (locally) or fail (in CI) when torch is not installed."""
    require("torch")
