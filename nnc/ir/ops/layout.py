"""Layout ops: they move, pick, repeat or pad values and compute nothing.

Every axis is a **per-sample** axis: 0 is the first axis after the implicit batch,
negatives count from the end, and the batch axis can never be named (a value out of
range says so). ``docs/semantics.md`` (Layout) defines each op; the helpers here
(:meth:`Slice.ranges`, :func:`pad_source`) are the one place that resolves the
clamping and mirroring rules, so that every backend lowers the same numbers.

``split`` is notation, not an op: ``a, b = x |> split(axis = 0, sizes = [2, 3])``
lowers to one ``slice`` per output (see :func:`split_slices`).
"""

from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator

from nnc.errors import ShapeError, Span
from nnc.ir.base import Op
from nnc.ir.broadcast import broadcast_shapes
from nnc.ir.types import Dim, TensorType, add_const, format_shape, mul_const

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]


def _tuple(v: Any) -> Any:
    """One integer stands for a one-element list (``axes = 0`` is ``axes = [0]``)."""
    if isinstance(v, int) and not isinstance(v, bool):
        return (v,)
    return tuple(v) if isinstance(v, list) else v


class _Layout(Op):
    def axis(self, a: int, rank: int, shape: tuple[Dim, ...], what: str = "axis") -> int:
        """A per-sample axis, made non-negative; out of range is an error."""
        if not -rank <= a < rank:
            raise self.fail(
                f"{what} {a} is out of range for {format_shape(shape)}: per-sample axes are "
                f"0 to {rank - 1} (or -{rank} to -1); the batch axis cannot be named"
            )
        return a % rank

    def distinct(self, axes: Sequence[int], rank: int, shape: tuple[Dim, ...]) -> list[int]:
        out: list[int] = []
        for a in axes:
            k = self.axis(a, rank, shape)
            if k in out:
                raise self.fail(
                    f"axis {a} is named twice in {list(axes)} (for {format_shape(shape)})"
                )
            out.append(k)
        return out


class Transpose(_Layout):
    """Permute the per-sample axes: output axis ``i`` is input axis ``perm[i]``."""

    op: Literal["transpose"] = "transpose"
    perm: tuple[int, ...] | None = None  # None: reverse the per-sample axes

    positional: ClassVar[tuple[str, ...]] = ("perm",)
    example: ClassVar[str] = "input x: [2, 3, 4]\n    transpose([2, 0, 1])"
    summary: ClassVar[str] = "permute the per-sample axes (default: reverse them)"

    def permutation(self, rank: int) -> tuple[int, ...]:
        """The permutation as non-negative per-sample axes (checked by infer)."""
        if self.perm is None:
            return tuple(reversed(range(rank)))
        return tuple(p % rank for p in self.perm)

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        if self.perm is not None:
            if len(self.perm) != x.rank:
                raise self.fail(
                    f"perm {list(self.perm)} has {len(self.perm)} entries for the "
                    f"{x.rank} per-sample axes of {format_shape(x.shape)} (the batch axis "
                    "never moves and is not listed)"
                )
            self.distinct(self.perm, x.rank, x.shape)
        return x.with_shape(tuple(x.shape[p] for p in self.permutation(x.rank)))


class Squeeze(_Layout):
    """Remove size-1 axes (default: every static size-1 axis)."""

    op: Literal["squeeze"] = "squeeze"
    axes: tuple[int, ...] | None = None

    positional: ClassVar[tuple[str, ...]] = ("axes",)
    example: ClassVar[str] = "input x: [3, 1, 4]\n    squeeze([1])"
    summary: ClassVar[str] = "remove size-1 per-sample axes"
    # Squeeze/Unsqueeze only relabel unit axes: the importer reads them as a view of
    # the same values, which becomes one reshape where a value must have the shape.
    onnx_imports_as: ClassVar[tuple[str, ...] | None] = ("reshape",)

    @field_validator("axes", mode="before")
    @classmethod
    def _axes(cls, v: Any) -> Any:
        return _tuple(v)

    def removed(self, x: TensorType) -> tuple[int, ...]:
        if self.axes is None:
            return tuple(i for i, d in enumerate(x.shape) if d == 1)
        return tuple(sorted(a % x.rank for a in self.axes))

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        if self.axes is not None:
            for a in self.distinct(self.axes, x.rank, x.shape):
                if x.shape[a] != 1:
                    raise self.fail(
                        f"axis {a} of {format_shape(x.shape)} has size {x.shape[a]}; only "
                        "size-1 axes can be squeezed"
                    )
        removed = self.removed(x)
        if len(removed) == x.rank:
            raise self.fail(
                f"squeezing {format_shape(x.shape)} would leave no per-sample axis; "
                "keep at least one"
            )
        return x.with_shape(tuple(d for i, d in enumerate(x.shape) if i not in removed))


class Unsqueeze(_Layout):
    """Insert size-1 axes at positions of the output (ONNX ``Unsqueeze``)."""

    op: Literal["unsqueeze"] = "unsqueeze"
    axes: tuple[int, ...]

    positional: ClassVar[tuple[str, ...]] = ("axes",)
    example: ClassVar[str] = "input x: [3, 4]\n    unsqueeze([0, -1])"
    summary: ClassVar[str] = "insert size-1 axes at the given output positions"
    # Squeeze/Unsqueeze only relabel unit axes: the importer reads them as a view of
    # the same values, which becomes one reshape where a value must have the shape.
    onnx_imports_as: ClassVar[tuple[str, ...] | None] = ("reshape",)

    @field_validator("axes", mode="before")
    @classmethod
    def _axes(cls, v: Any) -> Any:
        return _tuple(v)

    def inserted(self, rank: int) -> tuple[int, ...]:
        """The new axes as non-negative positions of the output, ascending."""
        out = rank + len(self.axes)
        return tuple(sorted(a % out for a in self.axes))

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        if not self.axes:
            raise self.fail("needs at least one axis")
        out_rank = x.rank + len(self.axes)
        out_shape = (1,) * out_rank  # the positions are checked against the output rank
        self.distinct(self.axes, out_rank, out_shape)
        shape: list[Dim] = list(x.shape)
        for a in self.inserted(x.rank):
            shape.insert(a, 1)
        return x.with_shape(tuple(shape))


class Slice(_Layout):
    """``x[start:stop:step]`` on each named axis, with Python's clamping rules."""

    op: Literal["slice"] = "slice"
    axes: tuple[int, ...] | None = None  # None: 0, 1, ... (one per start)
    starts: tuple[int, ...]
    stops: tuple[int, ...]
    steps: tuple[int, ...] | None = None  # None: 1 on every axis

    # Always written with keywords: four lists in a row would not read.
    example: ClassVar[str] = (
        "input x: [4, 6]\n    slice(axes = [0, 1], starts = [1, -1], stops = [3, -7], "
        "steps = [1, -2])"
    )
    summary: ClassVar[str] = "x[start:stop:step] per axis (Python/ONNX clamping)"

    @field_validator("axes", "starts", "stops", "steps", mode="before")
    @classmethod
    def _tuples(cls, v: Any) -> Any:
        return _tuple(v)

    def named(self) -> tuple[int, ...]:
        return self.axes if self.axes is not None else tuple(range(len(self.starts)))

    def ranges(self, x: TensorType) -> dict[int, tuple[int, int | None, int, int]]:
        """Per sliced axis: ``(start, stop, step, length)`` resolved by Python's rule,
        with ``stop`` None where a negative step runs through index 0 (``x[3::-1]``)."""
        steps = self.steps if self.steps is not None else (1,) * len(self.starts)
        out: dict[int, tuple[int, int | None, int, int]] = {}
        for a, start, stop, step in zip(self.named(), self.starts, self.stops, steps, strict=True):
            k = a % x.rank
            n = x.shape[k]
            assert isinstance(n, int)
            first, end, s = slice(start, stop, step).indices(n)
            length = len(range(first, end, s))
            out[k] = (first, None if end < 0 else end, s, length)
        return out

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        named = self.named()
        counts = {"starts": len(self.starts), "stops": len(self.stops), "axes": len(named)}
        if self.steps is not None:
            counts["steps"] = len(self.steps)
        if len(set(counts.values())) != 1:
            raise self.fail(
                "axes, starts, stops and steps need one entry per sliced axis. Received: "
                + ", ".join(f"{k} {v}" for k, v in counts.items())
            )
        if not named:
            raise self.fail("needs at least one axis to slice")
        if self.steps is not None and 0 in self.steps:
            raise self.fail(f"steps {list(self.steps)} contain 0; a step must be non-zero")
        for a in self.distinct(named, x.rank, x.shape):
            if not isinstance(x.shape[a], int):
                raise self.fail(
                    f"axis {a} of {format_shape(x.shape)} is symbolic; slice needs a static size"
                )
        shape = list(x.shape)
        for k, (_, _, _, length) in self.ranges(x).items():
            if length == 0:
                raise self.fail(
                    f"selects nothing along axis {k} of {format_shape(x.shape)} "
                    f"(starts {list(self.starts)}, stops {list(self.stops)})"
                )
            shape[k] = length
        return x.with_shape(tuple(shape))


PadMode = Literal["constant", "reflect", "edge"]


def pad_source(n: int, begin: int, end: int, mode: str) -> list[int]:
    """The input index each output index reads along one axis in ``reflect`` or ``edge``
    mode: ``reflect`` mirrors about the first and last elements without repeating
    them (``[1, 2, 3]`` padded by 2 -> ``[3, 2, 1, 2, 3, 2, 1]``); ``edge`` repeats them.

    >>> pad_source(3, 2, 2, "reflect"), pad_source(3, 1, 2, "edge")
    ([2, 1, 0, 1, 2, 1, 0], [0, 0, 1, 2, 2, 2])
    """
    out: list[int] = []
    for i in range(-begin, n + end):
        if mode == "edge":
            out.append(min(max(i, 0), n - 1))
        else:
            out.append(-i if i < 0 else (2 * (n - 1) - i if i >= n else i))
    return out


class Pad(_Layout):
    """Pad each per-sample axis: ``pads = [begin_0, ..., begin_k, end_0, ..., end_k]``."""

    op: Literal["pad"] = "pad"
    pads: tuple[NonNegativeInt, ...]
    mode: PadMode = "constant"
    value: float = 0.0

    positional: ClassVar[tuple[str, ...]] = ("pads",)
    example: ClassVar[str] = "input x: [2, 3, 4]\n    pad([0, 1, 2, 0, 2, 1], mode = reflect)"
    summary: ClassVar[str] = "pad per axis (ONNX order): constant, reflect or edge"

    def pairs(self, rank: int) -> list[tuple[int, int]]:
        """``(begin, end)`` per per-sample axis."""
        return list(zip(self.pads[:rank], self.pads[rank:], strict=True))

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        self.expect_float(x)
        if len(self.pads) != 2 * x.rank:
            raise self.fail(
                f"pads {list(self.pads)} need {2 * x.rank} values for {format_shape(x.shape)}: "
                "the begins of every per-sample axis, then the ends (ONNX order)"
            )
        if self.mode != "constant" and self.value != 0.0:
            raise self.fail(f"value = {self.value} applies to mode = constant only")
        shape: list[Dim] = []
        for k, (d, (begin, end)) in enumerate(zip(x.shape, self.pairs(x.rank), strict=True)):
            if self.mode != "constant" and (begin or end):
                if not isinstance(d, int):
                    raise self.fail(
                        f"{self.mode} padding of axis {k} needs a static size; "
                        f"{format_shape(x.shape)} has '{d}' there"
                    )
                if self.mode == "reflect" and max(begin, end) >= d:
                    raise self.fail(
                        f"reflect pads must be smaller than the axis: axis {k} of "
                        f"{format_shape(x.shape)} has size {d}, pads ({begin}, {end})"
                    )
            shape.append(add_const(d, begin + end))
        return x.with_shape(tuple(shape))


class Tile(_Layout):
    """Repeat the whole sample ``repeats[i]`` times along axis ``i`` (``np.tile``)."""

    op: Literal["tile"] = "tile"
    repeats: tuple[PositiveInt, ...]

    positional: ClassVar[tuple[str, ...]] = ("repeats",)
    example: ClassVar[str] = "input x: [2, 3]\n    tile([2, 3])"
    summary: ClassVar[str] = "repeat the sample along each axis (np.tile)"

    @field_validator("repeats", mode="before")
    @classmethod
    def _repeats(cls, v: Any) -> Any:
        return _tuple(v)

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        if len(self.repeats) != x.rank:
            raise self.fail(
                f"repeats {list(self.repeats)} need one value per per-sample axis of "
                f"{format_shape(x.shape)} ({x.rank})"
            )
        return x.with_shape(
            tuple(mul_const(d, r) for d, r in zip(x.shape, self.repeats, strict=True))
        )


class BroadcastTo(_Layout):
    """Broadcast the sample to ``shape`` by NumPy's rule (size-1 axes stretch,
    missing leading axes are 1)."""

    op: Literal["broadcast_to"] = "broadcast_to"
    shape: tuple[PositiveInt, ...]

    positional: ClassVar[tuple[str, ...]] = ("shape",)
    example: ClassVar[str] = "input x: [3, 1]\n    broadcast_to([2, 3, 4])"
    summary: ClassVar[str] = "broadcast the sample to a shape (NumPy rule)"

    @field_validator("shape", mode="before")
    @classmethod
    def _shape(cls, v: Any) -> Any:
        return _tuple(v)

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        if len(self.shape) < x.rank:
            raise self.fail(
                f"cannot broadcast {format_shape(x.shape)} to the lower-rank "
                f"{format_shape(self.shape)}"
            )
        try:
            out = broadcast_shapes(x.shape, self.shape)
        except ShapeError as exc:
            raise self.fail(exc.message) from None
        if out != self.shape:
            raise self.fail(
                f"cannot broadcast {format_shape(x.shape)} to {format_shape(self.shape)}: "
                f"the broadcast is {format_shape(out)}"
            )
        return x.with_shape(self.shape)


def split_slices(
    axis: int, sizes: Sequence[int], span: Span | None = None
) -> list[dict[str, tuple[int, ...]]]:
    """The slice attributes of each output of ``split(axis, sizes)``: consecutive
    pieces of ``sizes[i]`` elements along ``axis``."""
    if not sizes or any(s <= 0 for s in sizes):
        raise ShapeError(f"split: sizes {list(sizes)} must be positive (one per output)", span)
    out: list[dict[str, tuple[int, ...]]] = []
    offset = 0
    for s in sizes:
        out.append({"axes": (axis,), "starts": (offset,), "stops": (offset + s,)})
        offset += s
    return out


def check_split(axis: int, sizes: Sequence[int], x: TensorType, span: Span | None) -> None:
    """``sum(sizes)`` must be the size of ``axis`` of ``x``."""
    if not -x.rank <= axis < x.rank:
        raise ShapeError(
            f"split: axis {axis} is out of range for {format_shape(x.shape)}: per-sample axes "
            f"are 0 to {x.rank - 1} (or -{x.rank} to -1); the batch axis cannot be named",
            span,
        )
    n = x.shape[axis % x.rank]
    if n != sum(sizes):
        raise ShapeError(
            f"split: sizes {list(sizes)} add up to {sum(sizes)}, but axis {axis} of "
            f"{format_shape(x.shape)} has size {n}",
            span,
        )
