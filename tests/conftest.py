"""Shared fixtures.

Framework-dependent tests call :func:`require`: on a developer machine without the
framework they skip, but under CI (``CI=true``, where ``.ci/run`` installs every
framework) a missing framework fails the test, so CI can never pass by skipping.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# One intra-op thread per test process: the suite runs in parallel over processes
# (pytest -n auto), and a framework's own thread pool on top of that oversubscribes
# the cores: torch's threads spin-wait on tiny models, which made the torch
# convergence tests 2 to 7 times slower on 2 cores (digits_cnn 24.3 s -> 4.5 s, the
# U-Net 32.3 s -> 4.6 s). Set before any framework is imported; subprocesses inherit
# it. A value the user set wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
# Search spaces (*_search.nn) train through nnc search, not as one recipe.
EXAMPLE_FILES = sorted(p for p in EXAMPLES.glob("*.nn") if not p.stem.endswith("_search"))
SEARCH_EXAMPLES = sorted(EXAMPLES.glob("*_search.nn"))

# Examples too large to run numerically in the suite, and the input they run at
# there. AlexNet at [3, 67, 67] (the smallest input its three pools still take)
# keeps every layer, its groups and its LRN; its full 227x227 forward pass is in
# benchmarks/bench_alexnet.py.
REDUCED_INPUTS: dict[str, list[int]] = {"alexnet": [3, 67, 67]}


# The examples the per-backend example tests run: their own references loop over
# elements (100 s for AlexNet), so AlexNet is compared with the float64 reference by
# the equivalence matrix (tests/equivalence/test_examples.py) and ONNX's tests only.
# seq_reverse (two Transformer layers) costs ~40 s in the torch and TensorFlow loop
# references; the equivalence matrix compares it with the float64 reference on every
# backend instead; so are char_transformer and vit_digits (two Transformer blocks each).
SLOW_LOOP_REFERENCE = {"seq_reverse", "char_transformer", "vit_digits"}
SMALL_EXAMPLE_FILES = [
    p for p in EXAMPLE_FILES if p.stem not in REDUCED_INPUTS and p.stem not in SLOW_LOOP_REFERENCE
]


def load_example(path: Path):  # type: ignore[no-untyped-def]
    """The checked program of an example, at its reduced input when it has one."""
    import nnc
    from nnc.rewrite import set_input_shape

    program = nnc.load(path)
    if path.stem in REDUCED_INPUTS:
        program, _ = set_input_shape(program, REDUCED_INPUTS[path.stem])
    return program


def require(module: str) -> None:
    """Skip (locally) or fail (in CI) when ``module`` cannot be imported."""
    if importlib.util.find_spec(module) is None:
        message = f"{module} is not installed"
        if os.environ.get("CI"):
            pytest.fail(f"{message}, but CI installs every framework")
        pytest.skip(message)


def nnc_argv(*args: str) -> list[str]:
    """The command line that runs the nnc CLI of this checkout with ``args``."""
    return [sys.executable, "-m", "nnc.cli.main", *args]


def nnc_env() -> dict[str, str]:
    """The environment for :func:`nnc_argv`: this checkout first, no NNC_DEBUG."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("NNC_DEBUG", None)
    return env


def run_nnc(*args: str, cwd: Path | None = None, timeout: float = 300, **kwargs):  # type: ignore[no-untyped-def]
    """Run the nnc CLI in a subprocess, from this checkout."""
    return subprocess.run(
        nnc_argv(*args),
        cwd=cwd or ROOT,
        env=nnc_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


@pytest.fixture(params=EXAMPLE_FILES, ids=lambda p: p.stem)
def example(request: pytest.FixtureRequest) -> Path:
    return request.param


@pytest.fixture(params=SMALL_EXAMPLE_FILES, ids=lambda p: p.stem)
def small_example(request: pytest.FixtureRequest) -> Path:
    """An example other than the reduced-input ones, for the sweeps that repeat a check
    the equivalence matrix already makes on every example (AlexNet costs 4 to 6 s each)."""
    return request.param


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite the golden files of generated code instead of comparing with them",
    )


@pytest.fixture
def golden(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """``golden(path, text)``: compare generated text with a checked-in file under
    tests/golden, or rewrite the file with ``--update-golden``."""
    update = request.config.getoption("--update-golden")

    def check(relative: str, text: str) -> None:
        path = ROOT / "tests" / "golden" / relative
        if update or not path.exists():
            if not update and os.environ.get("CI"):
                pytest.fail(f"golden file {relative} is missing; run with --update-golden")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        expected = path.read_text(encoding="utf-8")
        assert text == expected, (
            f"generated code differs from tests/golden/{relative}; if the change is "
            "intended, rerun with --update-golden and review the diff"
        )

    return check


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """torch with one intra-op thread for a module of tests, restored afterwards: on
    tiny models its threads spin-wait, which costs up to twice the CPU time on a busy
    two-core machine. Used by the equivalence matrix."""
    if importlib.util.find_spec("torch") is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
