"""Search spaces: the distributions a ``.nn`` file may write in place of a value.

A distribution stands where a number or a setting would (``lr = loguniform(1e-4,
1e-1)``, ``dense(choice(64, 128))``, ``repeat integer(1, 3) { ... }``). A
:class:`SearchSpace` lists them as :class:`Parameter` objects, in the order the file
uses them; ``nnc search`` samples one value of each per trial (with Optuna), and
``nnc check`` tries every :meth:`Parameter.probes` value.

This module knows only the distributions: the DSL finds them in a file and puts
sampled values back (:mod:`nnc.dsl.space`).

>>> Integer(low=1, high=4).probes()
(1, 2, 3, 4)
>>> LogUniform(low=1e-4, high=1e-1).probes()
(0.0001, 0.1)
"""

from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, model_validator

from nnc.errors import Span
from nnc.ir.base import IRModel

# An integer range with at most this many values is checked at every value; a wider
# one at its two ends (shape rules are monotone in a size, rarely otherwise).
EXHAUSTIVE_INTEGERS = 32

ChoiceValue = bool | int | float | str


class _Distribution(IRModel):
    positional: ClassVar[tuple[str, ...]] = ("low", "high")
    summary: ClassVar[str] = ""

    def probes(self) -> tuple[ChoiceValue, ...]:
        """The values ``nnc check`` tries, the first being the one the base program uses."""
        raise NotImplementedError


class _RealRange(_Distribution):
    """A real number between ``low`` and ``high``; ``nnc check`` tries both ends."""

    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low:g}) must be below high ({self.high:g})")
        return self

    def probes(self) -> tuple[ChoiceValue, ...]:
        return (self.low, self.high)


class Uniform(_RealRange):
    kind: Literal["uniform"] = "uniform"
    summary: ClassVar[str] = "a real number drawn evenly from [low, high]"


class LogUniform(_RealRange):
    kind: Literal["loguniform"] = "loguniform"
    low: Annotated[float, Field(gt=0)]
    high: Annotated[float, Field(gt=0)]
    summary: ClassVar[str] = "a positive real number whose logarithm is drawn evenly"


class Integer(_Distribution):
    """Whole numbers ``low, low + step, ..., high`` (both ends included); ``log``
    draws them evenly on a log scale (step 1 only)."""

    kind: Literal["integer"] = "integer"
    low: int
    high: int
    step: Annotated[int, Field(gt=0)] = 1
    log: bool = False
    summary: ClassVar[str] = "a whole number from low to high, both included"

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if (self.high - self.low) % self.step:
            raise ValueError(
                f"high - low ({self.high - self.low}) must be a multiple of step ({self.step})"
            )
        if self.log and (self.step != 1 or self.low < 1):
            raise ValueError("a log-scale integer range needs step 1 and low of at least 1")
        return self

    def values(self) -> range:
        return range(self.low, self.high + 1, self.step)

    def probes(self) -> tuple[ChoiceValue, ...]:
        values = self.values()
        if len(values) <= EXHAUSTIVE_INTEGERS:
            return tuple(values)
        return (self.low, self.high)


class Choice(_Distribution):
    """One of the options, each written as the file writes it; ``options`` holds their
    labels: numbers and booleans as themselves, anything else as its source text."""

    kind: Literal["choice"] = "choice"
    options: Annotated[tuple[ChoiceValue, ...], Field(min_length=1)]
    positional: ClassVar[tuple[str, ...]] = ()
    summary: ClassVar[str] = "one of the options, each equally likely at first"

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        seen: list[ChoiceValue] = []
        for option in self.options:
            if any(type(option) is type(s) and option == s for s in seen):
                raise ValueError(f"option {option!r} is given twice")
            seen.append(option)
        return self

    def probes(self) -> tuple[ChoiceValue, ...]:
        return self.options


Distribution = Annotated[Uniform | LogUniform | Integer | Choice, Field(discriminator="kind")]
DISTRIBUTIONS: dict[str, type[_Distribution]] = {
    c.model_fields["kind"].default: c for c in (Uniform, LogUniform, Integer, Choice)
}


class Parameter(IRModel):
    """One distribution of a file: its name (where it is used, ``dense_1.units``), what
    it draws, and where it is written."""

    name: str
    distribution: Distribution
    span: Span | None = None

    @property
    def integer(self) -> bool:
        return isinstance(self.distribution, Integer)


class SearchSpace(IRModel):
    """The distributions of a file, in the order its models and recipe use them."""

    parameters: tuple[Parameter, ...] = ()

    def __len__(self) -> int:
        return len(self.parameters)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)


__all__ = [
    "DISTRIBUTIONS",
    "EXHAUSTIVE_INTEGERS",
    "Choice",
    "ChoiceValue",
    "Distribution",
    "Integer",
    "LogUniform",
    "Parameter",
    "SearchSpace",
    "Uniform",
]
