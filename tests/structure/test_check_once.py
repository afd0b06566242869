"""A checked program is checked once: the backends, the driver and the API take the
program ``nnc.load`` returns as it is, and only a new or edited program is checked."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import nnc
import nnc.ir.passes as passes
from nnc.errors import ResourceError
from nnc.ir.passes import check, is_checked


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """How often shape inference and validation (the work of ``check``) run."""
    counts: Counter[str] = Counter()

    def counting(name: str) -> Callable[..., Any]:
        original = getattr(passes, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return original(*args, **kwargs)

        return counted

    for name in ("infer_shapes", "validate"):
        monkeypatch.setattr(passes, name, counting(name))
    yield counts


@pytest.mark.parametrize("backend", ["numpy", "torch", "tensorflow", "onnx"])
def test_emit_does_not_check_a_loaded_program_again(runs: Counter[str], backend: str) -> None:
    program = nnc.load("examples/xor.nn")
    assert is_checked(program)
    runs.clear()
    nnc.emit(program, backend)
    assert runs == Counter()


def test_a_gan_emits_and_a_recipe_trains_without_checking_again(runs: Counter[str]) -> None:
    gan = nnc.load("examples/gan.nn")
    runs.clear()
    nnc.emit(gan, "torch")
    nnc.emit(gan, "numpy")
    assert runs == Counter()
    xor = nnc.load("examples/xor.nn")
    runs.clear()
    result = nnc.fit(xor, epochs=2, save=False)
    assert len(result.history) == 2
    nnc.runtime(xor, "numpy")
    assert runs == Counter()


def test_a_copy_or_an_edit_is_checked_again(runs: Counter[str]) -> None:
    program = nnc.load("examples/xor.nn")
    runs.clear()
    assert check(program) is program
    copied = program.model_copy(update={"recipes": {}})
    assert not is_checked(copied)
    again = check(copied)
    assert is_checked(again) and runs == Counter(infer_shapes=1, validate=1)
    edited = nnc.load("examples/xor.nn")
    edited.models["Xor"] = edited.models["Xor"].model_copy(update={"outputs": ("dense_1",)})
    assert not is_checked(edited)


def test_a_smaller_memory_budget_checks_the_resources_again() -> None:
    program = nnc.load("examples/xor.nn")
    with pytest.raises(ResourceError, match="memory budget"):
        check(program, memory_budget=16)
