"""The IR containers: Program, Model and Input.

A :class:`Program` holds named models and named training recipes. A :class:`Model`
is a DAG: its ``nodes`` are in topological order, each naming its inputs by the name
of a model input or of an earlier node (``"node:k"`` picks output ``k`` of a call).
"""

from collections.abc import Mapping
from functools import cached_property
from typing import Any, Self

from pydantic import Field, PrivateAttr

from nnc.errors import NameResolutionError, Span, did_you_mean
from nnc.ir import display
from nnc.ir.base import IRModel
from nnc.ir.ops import Node
from nnc.ir.training import AnyRecipe
from nnc.ir.types import TensorType


class Input(IRModel):
    name: str
    type: TensorType
    span: Span | None = None


class BlockInstance(IRModel):
    """Where an instance of a block came from: the DSL unfolds a block into its
    model's nodes (named ``<instance>_<node>``) and records the instance here, so a
    code generator can write it back as a unit (the torch backend's nested
    ``nn.Module``). Names refer to the model's nodes at lowering time; a pass that
    rewrites nodes may leave an instance that no longer matches, which a generator
    checks and then inlines."""

    name: str  # the instance: its nodes' names start with name + "_"
    block: str  # the block definition
    params: tuple[str, ...] = ()  # the block's parameters, in definition order
    args: tuple[str, ...] = ()  # their values for this instance, as spec text
    inputs: tuple[tuple[str, str], ...] = ()  # (declared input, the value bound to it)
    shapes: tuple[tuple[int | str, ...], ...] = ()  # each input's declared shape
    outputs: tuple[str, ...] = ()  # the values the instance outputs
    nodes: tuple[str, ...] = ()  # its nodes (those of nested instances included)
    parent: str = ""  # the instance it is nested in ("" at the top of the model)


class Model(IRModel):
    name: str
    inputs: tuple[Input, ...]
    nodes: tuple[Node, ...]
    outputs: tuple[str, ...]
    span: Span | None = None
    # Provenance for code generators only: not compared, hashed or serialized, so a
    # program equals itself however it was built (JSON, the builder, unparsed text).
    blocks: tuple[BlockInstance, ...] = Field(default=(), exclude=True)

    # Lookups by name: a dict built once per (immutable) model, so passes that ask
    # for every node's input types stay linear in the size of the model (a scan per
    # lookup made a 10,000-layer spec take minutes to check).
    @cached_property
    def nodes_by_name(self) -> dict[str, Node]:
        index: dict[str, Node] = {}
        for n in self.nodes:
            index.setdefault(n.name, n)  # the first of duplicates, as a scan finds
        return index

    @cached_property
    def inputs_by_name(self) -> dict[str, Input]:
        index: dict[str, Input] = {}
        for i in self.inputs:
            index.setdefault(i.name, i)
        return index

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy (with ``update``), its name indexes dropped: they are cached in the
        instance's ``__dict__``, which pydantic copies along with the fields."""
        copied = super().model_copy(update=update, deep=deep)
        for index in ("nodes_by_name", "inputs_by_name"):
            copied.__dict__.pop(index, None)
        return copied

    def node(self, name: str) -> Node:
        found = self.nodes_by_name.get(name)
        if found is None:
            raise NameResolutionError(f"model '{self.name}' has no node '{name}'")
        return found

    def input_type(self, name: str) -> TensorType:
        found = self.inputs_by_name.get(name)
        if found is None:
            raise NameResolutionError(f"model '{self.name}' has no input '{name}'")
        return found.type

    def value_type(self, ref: str) -> TensorType:
        """The type of a value reference: an input, a node, or ``node:k``."""
        node_name, _, index = ref.partition(":")
        if ref in self.inputs_by_name:
            return self.inputs_by_name[ref].type
        node = self.node(node_name)
        return node.outs[int(index or 0)]

    @property
    def output_types(self) -> tuple[TensorType, ...]:
        return tuple(self.value_type(o) for o in self.outputs)

    # -- graph queries (see nnc.ir.graph) -----------------------------------------

    def topological(self) -> list[Node]:
        """The nodes in dependency order."""
        from nnc.ir.graph import topological

        return topological(self)

    def find(self, op: str | None = None, *, name: str | None = None) -> list[Node]:
        """Nodes by op and/or name glob: ``model.find("conv2d", name="residual_1_*")``."""
        from nnc.ir.graph import find

        return find(self, op, name)

    def producers(self, node: str) -> list[Node]:
        """The nodes whose outputs ``node`` reads."""
        from nnc.ir.graph import producers

        return producers(self, node)

    def consumers(self, value: str) -> list[Node]:
        """The nodes that read ``value`` (an input, a node, or ``node:k``)."""
        from nnc.ir.graph import consumers

        return consumers(self, value)

    # -- Jupyter: the table and the picture (nnc.notebook, through nnc.ir.display) --

    def _repr_html_(self) -> str | None:
        return display.show("model_html", self)

    def _repr_svg_(self) -> str | None:
        return display.show("model_svg", self)


class Program(IRModel):
    models: dict[str, Model] = Field(default_factory=dict)
    recipes: dict[str, AnyRecipe] = Field(default_factory=dict)

    # What :func:`nnc.ir.passes.check` vouched for: this very object, the models and
    # recipes it held, and the memory budget. A copy (``model_copy``, pickling) is
    # another object and an edited dict holds other values, so neither passes as
    # checked; the flag saves the passes only from running twice on one program.
    _checked: tuple[object, ...] | None = PrivateAttr(default=None)

    def _check_stamp(self) -> tuple[object, ...]:
        return (
            id(self),
            *((k, id(v)) for k, v in self.models.items()),
            None,
            *((k, id(v)) for k, v in self.recipes.items()),
        )

    def checked_budget(self) -> int | None:
        """The memory budget this program was checked under by
        :func:`nnc.ir.passes.check`, or None when it is not known to be checked."""
        stamp = self._checked
        if stamp is None or stamp[1:] != self._check_stamp():
            return None
        limit = stamp[0]
        return limit if isinstance(limit, int) else None

    def mark_checked(self, budget: int) -> None:
        """Record that :func:`nnc.ir.passes.check` passed this program (its passes
        alone call this)."""
        self._checked = (budget, *self._check_stamp())

    def model(self, name: str | None = None) -> Model:
        """A model by name; without a name, the only (or the first trained) model."""
        if name is None:
            if len(self.models) == 1:
                return next(iter(self.models.values()))
            for recipe in self.recipes.values():
                for m in recipe.models:
                    if m in self.models:
                        return self.models[m]
            if self.models:
                return next(iter(self.models.values()))
            raise NameResolutionError("the program defines no model")
        if name not in self.models:
            raise NameResolutionError(
                f"no model named '{name}'. Models: {', '.join(self.models) or 'none'}",
                hint=did_you_mean(name, self.models),
            )
        return self.models[name]

    def param_counts(self, model: str | None = None) -> dict[str, int]:
        """Parameters per node of a checked model (a call counts its callee's),
        buffers excluded: ``{"dense_1": 25, "sigmoid_1": 0, ...}``."""
        from nnc.ir.summary import summarize

        return {r.name: r.params for r in summarize(self, self.model(model)).rows}

    def summary(self, model: str | None = None) -> str:
        """A text table per model of a checked program: layers, output shapes,
        parameters. Without ``model``, every model.

        >>> import nnc
        >>> print(nnc.load("examples/xor.nn").summary())
        model Xor
          layer      op       inputs     output shape  params
          x          input               [2]
          dense_1    dense    x          [5]               15
          sigmoid_1  sigmoid  dense_1    [5]
          dense_2    dense    sigmoid_1  [1]                6
          sigmoid_2  sigmoid  dense_2    [1]
          total                                            21
        params: 21 (21 trainable, 0 frozen); parameter memory 84 B; activations 48 B per sample
        """
        from nnc.ir.summary import format_summary, summarize

        names = [self.model(model).name] if model is not None else list(self.models)
        return "\n\n".join(format_summary(summarize(self, n)) for n in names)

    # -- Jupyter: the table and the picture (nnc.notebook, through nnc.ir.display) --

    def _repr_html_(self) -> str | None:
        return display.show("program_html", self)

    def _repr_svg_(self) -> str | None:
        return display.show("program_svg", self)

    def to_json(self, indent: int | None = 2) -> str:
        """The IR as JSON; :func:`nnc.ir.serialize.loads_json` reads it back identically."""
        return self.model_dump_json(indent=indent)
