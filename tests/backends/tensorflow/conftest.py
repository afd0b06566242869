"""Fixtures of the TensorFlow backend tests: TensorFlow once per session, runtimes
built once and shared (tracing a graph costs more than most checks)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import require

# TensorFlow's C++ start-up notices (oneDNN, CPU features) are noise in test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def tf() -> Any:
    require("tensorflow")
    from nnc.backends.tensorflow.framework import import_tensorflow

    return import_tensorflow()


@pytest.fixture(scope="session")
def runtimes(tf: Any) -> Callable[..., Any]:
    """``runtimes(key, make)``: the runtime ``make()`` builds, built once per key."""
    cache: dict[str, Any] = {}

    def get(key: str, make: Callable[[], Any]) -> Any:
        if key not in cache:
            cache[key] = make()
        return cache[key]

    return get
