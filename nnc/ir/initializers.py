"""Initializer specs and their NumPy implementation.

Initializers run once, in NumPy, from the recipe's seed. Every backend loads the
resulting canonical weights, which is why training is comparable across backends.
``fan_in`` and ``fan_out`` come from the owning op (see ``docs/semantics.md``).

:meth:`~_Init.draw` gives the float32 array that becomes a weight. It fills it in
chunks of float64 draws, so a large layer costs its 4 bytes a value plus one chunk,
not a float64 array twice its size; NumPy's generators give the same stream chunk by
chunk, so the values are those of one float64 draw rounded to float32.

>>> import numpy as np
>>> w = HeNormal().sample((64, 32), fan_in=32, fan_out=64, rng=np.random.default_rng(0))
>>> w.shape, round(float(w.std()), 2)
((64, 32), 0.25)
"""

import math
from abc import abstractmethod
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # numpy is imported where initializers run, not to parse a spec
    import numpy as np


DRAW_CHUNK = 1 << 20
"""Values drawn at a time by :meth:`_Init.draw` (8 MiB of float64)."""


class _Init(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True, allow_inf_nan=False)
    positional: ClassVar[tuple[str, ...]] = ()
    elementwise: ClassVar[bool] = True
    """Each value is drawn on its own, so the array can be drawn a chunk at a time."""

    def draw(
        self, shape: tuple[int, ...], fan_in: int, fan_out: int, rng: "np.random.Generator"
    ) -> "np.ndarray":
        """The float32 array of ``shape``: :meth:`sample` rounded, drawn in chunks."""
        import numpy as np

        if not self.elementwise:
            return np.asarray(self.sample(shape, fan_in, fan_out, rng), dtype=np.float32)
        out = np.empty(shape, dtype=np.float32)
        flat = out.reshape(-1)
        for start in range(0, flat.size, DRAW_CHUNK):
            stop = min(start + DRAW_CHUNK, flat.size)
            flat[start:stop] = self.sample((stop - start,), fan_in, fan_out, rng)
        return out

    @abstractmethod
    def sample(
        self, shape: tuple[int, ...], fan_in: int, fan_out: int, rng: "np.random.Generator"
    ) -> "np.ndarray":
        """Draw an array of ``shape`` in float64."""


class Zeros(_Init):
    kind: Literal["zeros"] = "zeros"

    def sample(
        self, shape: tuple[int, ...], fan_in: int, fan_out: int, rng: "np.random.Generator"
    ) -> "np.ndarray":
        import numpy as np

        return np.zeros(shape)


class Ones(_Init):
    kind: Literal["ones"] = "ones"

    def sample(
        self, shape: tuple[int, ...], fan_in: int, fan_out: int, rng: "np.random.Generator"
    ) -> "np.ndarray":
        import numpy as np

        return np.ones(shape)


class Constant(_Init):
    kind: Literal["constant"] = "constant"
    value: float = 0.0
    positional: ClassVar[tuple[str, ...]] = ("value",)

    def sample(
        self, shape: tuple[int, ...], fan_in: int, fan_out: int, rng: "np.random.Generator"
    ) -> "np.ndarray":
        import numpy as np

        return np.full(shape, self.value)


class Normal(_Init):
    kind: Literal["normal"] = "normal"
    mean: float = 0.0
    std: Annotated[float, Field(ge=0)] = 0.05
    positional: ClassVar[tuple[str, ...]] = ("mean", "std")

    def sample(
        self, shape: tuple[int, ...], fan_in: int, fan_out: int, rng: "np.random.Generator"
    ) -> "np.ndarray":
        return rng.normal(self.mean, self.std, size=shape)


class Uniform(_Init):
    kind: Literal["uniform"] = "uniform"
    lo: float = -0.05
    hi: float = 0.05
    positional: ClassVar[tuple[str, ...]] = ("lo", "hi")

    def sample(
        self, shape: tuple[int, ...], fan_in: int, fan_out: int, rng: "np.random.Generator"
    ) -> "np.ndarray":
        return rng.uniform(self.lo, self.hi, size=shape)


class _VarianceScaling(_Init):
    """Variance ``scale / n`` where n is fan_in, fan_out or their mean."""

    scale: ClassVar[float] = 1.0
    mode: ClassVar[str] = "fan_in"
    distribution: ClassVar[str] = "normal"

    def sample(
        self, shape: tuple[int, ...], fan_in: int, fan_out: int, rng: "np.random.Generator"
    ) -> "np.ndarray":
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(n, 1)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return rng.uniform(-limit, limit, size=shape)
        return rng.normal(0.0, math.sqrt(variance), size=shape)


class GlorotUniform(_VarianceScaling):
    kind: Literal["glorot_uniform"] = "glorot_uniform"
    mode: ClassVar[str] = "fan_avg"
    distribution: ClassVar[str] = "uniform"


class GlorotNormal(_VarianceScaling):
    kind: Literal["glorot_normal"] = "glorot_normal"
    mode: ClassVar[str] = "fan_avg"


class HeUniform(_VarianceScaling):
    kind: Literal["he_uniform"] = "he_uniform"
    scale: ClassVar[float] = 2.0
    distribution: ClassVar[str] = "uniform"


class HeNormal(_VarianceScaling):
    kind: Literal["he_normal"] = "he_normal"
    scale: ClassVar[float] = 2.0


class LecunUniform(_VarianceScaling):
    kind: Literal["lecun_uniform"] = "lecun_uniform"
    distribution: ClassVar[str] = "uniform"


class LecunNormal(_VarianceScaling):
    kind: Literal["lecun_normal"] = "lecun_normal"


class Orthogonal(_Init):
    """A (semi-)orthogonal matrix over the first axis vs the rest, times ``gain``."""

    kind: Literal["orthogonal"] = "orthogonal"
    gain: float = 1.0
    elementwise: ClassVar[bool] = False
    positional: ClassVar[tuple[str, ...]] = ("gain",)

    def sample(
        self, shape: tuple[int, ...], fan_in: int, fan_out: int, rng: "np.random.Generator"
    ) -> "np.ndarray":
        import numpy as np

        rows = shape[0]
        cols = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        a = rng.normal(0.0, 1.0, size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))  # make the decomposition unique
        if rows < cols:
            q = q.T
        return self.gain * q.reshape(shape)


Init = Annotated[
    Zeros
    | Ones
    | Constant
    | Normal
    | Uniform
    | GlorotUniform
    | GlorotNormal
    | HeUniform
    | HeNormal
    | LecunUniform
    | LecunNormal
    | Orthogonal,
    Field(discriminator="kind"),
]

INITIALIZERS: dict[str, type[_Init]] = {
    cls.model_fields["kind"].default: cls
    for cls in (
        Zeros,
        Ones,
        Constant,
        Normal,
        Uniform,
        GlorotUniform,
        GlorotNormal,
        HeUniform,
        HeNormal,
        LecunUniform,
        LecunNormal,
        Orthogonal,
    )
}
