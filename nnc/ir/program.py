"""The IR containers: Program, Model and Input.

A :class:`Program` holds named models and named training recipes. A :class:`Model`
is a DAG: its ``nodes`` are in topological order, each naming its inputs by the name
of a model input or of an earlier node (``"node:k"`` picks output ``k`` of a call).
"""

from __future__ import annotations

from pydantic import Field

from nnc.errors import NameResolutionError, Span, did_you_mean
from nnc.ir.base import IRModel
from nnc.ir.ops import Node
from nnc.ir.training import AnyRecipe
from nnc.ir.types import TensorType


class Input(IRModel):
    name: str
    type: TensorType
    span: Span | None = None


class Model(IRModel):
    name: str
    inputs: tuple[Input, ...]
    nodes: tuple[Node, ...]
    outputs: tuple[str, ...]
    span: Span | None = None

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise NameResolutionError(f"model '{self.name}' has no node '{name}'")

    def input_type(self, name: str) -> TensorType:
        for i in self.inputs:
            if i.name == name:
                return i.type
        raise NameResolutionError(f"model '{self.name}' has no input '{name}'")

    def value_type(self, ref: str) -> TensorType:
        """The type of a value reference: an input, a node, or ``node:k``."""
        node_name, _, index = ref.partition(":")
        for i in self.inputs:
            if i.name == ref:
                return i.type
        node = self.node(node_name)
        return node.outs[int(index or 0)]

    @property
    def output_types(self) -> tuple[TensorType, ...]:
        return tuple(self.value_type(o) for o in self.outputs)


class Program(IRModel):
    models: dict[str, Model] = Field(default_factory=dict)
    recipes: dict[str, AnyRecipe] = Field(default_factory=dict)

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

    def to_json(self, indent: int | None = 2) -> str:
        """The IR as JSON; :func:`nnc.ir.serialize.loads_json` reads it back identically."""
        return self.model_dump_json(indent=indent)
