"""Programs of several models and their training recipes, built in Python."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nnc.builder.binding import spec_value
from nnc.builder.model import Builder
from nnc.errors import GraphError, NameResolutionError, NncError, RecipeError, did_you_mean
from nnc.ir.ops.graph import Call
from nnc.ir.passes import check
from nnc.ir.passes.validate import check_identifier
from nnc.ir.program import Model, Program
from nnc.ir.training import (
    BinaryCrossEntropy,
    Cd,
    CdRecipe,
    CrossEntropy,
    DataFile,
    Dataset,
    GanRecipe,
    Recipe,
)

RECIPE_INTERNAL = frozenset({"kind", "name", "span", "setting_spans"})


class ProgramBuilder:
    """Builds a program of several models and training recipes.

    >>> import nnc
    >>> pb = nnc.ProgramBuilder()
    >>> enc = pb.model("Encoder")
    >>> _ = enc.dense(enc.input("pixels", [64]), 8)
    >>> ae = pb.model("Autoencoder")
    >>> code = ae.call(enc, ae.input("pixels", [64]))
    >>> _ = ae.dense(code, 64, activation="sigmoid")
    >>> pb.train("Autoencoder", data="digits", target="input", loss="mse", optimizer="adam")
    >>> program = pb.build()
    >>> [n.name for n in program.models["Autoencoder"].nodes]
    ['encoder_1', 'dense_1', 'sigmoid_1']
    """

    def __init__(self) -> None:
        self._models: dict[str, Builder | Model] = {}
        self._recipes: dict[str, dict[str, Any]] = {}

    def model(self, name: str) -> Builder:
        """A new model of this program."""
        if name in self._models:
            raise NameResolutionError(f"model '{name}' is defined twice")
        return Builder(name, program=self)

    def add_model(self, model: Model) -> None:
        """Add an existing IR model (from ``nnc.load``, say), to be called by others."""
        if model.name in self._models and self._models[model.name] is not model:
            raise NameResolutionError(f"model '{model.name}' is defined twice")
        self._models[model.name] = model

    def train(self, name: str, **settings: Any) -> None:
        """Add a training recipe. Supervised by default (``model`` defaults to
        ``name``); a GAN recipe when ``generator`` and ``discriminator`` are given.

        Spec settings take names or IR objects: ``loss="cross_entropy"``,
        ``optimizer=Adam(lr=0.005)``; ``data`` takes a built-in dataset name, a file
        path, or a ``Dataset``/``DataFile``. As in ``.nn`` text, an unspecified
        ``from_logits`` follows the model's last op.
        """
        problem = check_identifier(name, "train recipe name")
        if problem:
            raise NameResolutionError(problem)
        if name in self._recipes:
            raise NameResolutionError(f"train recipe '{name}' is defined twice")
        self._recipes[name] = settings

    def build(self) -> Program:
        """The checked program: shape inference and validation, as ``nnc.check``."""
        models = self._ir_models()
        recipes = {name: self._recipe(name, s, models) for name, s in self._recipes.items()}
        return check(Program(models=models, recipes=recipes))

    # -- internals -----------------------------------------------------------------------

    def _register(self, builder: Builder) -> None:
        if builder.name in self._models:
            raise NameResolutionError(f"model '{builder.name}' is defined twice")
        self._models[builder.name] = builder

    def _ir_models(self) -> dict[str, Model]:
        return {n: m.model() if isinstance(m, Builder) else m for n, m in self._models.items()}

    def _dependencies(self, model: Model) -> dict[str, Model]:
        """``model`` and the models it calls, directly or not (only those: the others
        may still be under construction)."""
        found = {model.name: model}
        for node in model.nodes:
            if isinstance(node, Call) and node.model not in found:
                callee = self._models.get(node.model)
                if callee is not None:
                    found.update(
                        self._dependencies(
                            callee.model() if isinstance(callee, Builder) else callee
                        )
                    )
        return found

    def _callee(self, model: str | Builder | Model, caller: str) -> Model:
        if isinstance(model, Builder):
            if model.program is not self:
                self._adopt(model)
            model = model.name
        elif isinstance(model, Model):
            self.add_model(model)
            model = model.name
        if model == caller:
            raise GraphError(f"model '{caller}' uses itself")
        found = self._models.get(model)
        if found is None:
            raise NameResolutionError(
                f"unknown model '{model}'", hint=did_you_mean(model, self._models)
            )
        return found.model() if isinstance(found, Builder) else found

    def _adopt(self, builder: Builder) -> None:
        """Take in a model built for another program, with the models it calls."""
        if self._models.get(builder.name) not in (None, builder):
            raise NameResolutionError(f"model '{builder.name}' is defined twice")
        self._models[builder.name] = builder
        for node in builder.model().nodes:
            if isinstance(node, Call) and node.model not in self._models:
                dep = builder.program._models[node.model]
                if isinstance(dep, Builder):
                    self._adopt(dep)
                else:
                    self.add_model(dep)

    def _recipe(
        self, name: str, settings: dict[str, Any], models: dict[str, Model]
    ) -> Recipe | GanRecipe | CdRecipe:
        is_gan = "generator" in settings or "discriminator" in settings
        optimizer = settings.get("optimizer")
        is_cd = isinstance(optimizer, Cd) or optimizer == "cd"
        if is_cd and (is_gan or "loss" in settings):
            raise RecipeError(
                f"train recipe '{name}': contrastive divergence (optimizer cd) trains rbm "
                "layers without a loss, and not a GAN; remove "
                + ("'loss'" if "loss" in settings else "'generator' and 'discriminator'")
            )
        cls: type[Recipe] | type[GanRecipe] | type[CdRecipe] = (
            GanRecipe if is_gan else CdRecipe if is_cd else Recipe
        )
        fields = {k: f for k, f in cls.model_fields.items() if k not in RECIPE_INTERNAL}
        values: dict[str, Any] = {}
        for key, value in settings.items():
            if key not in fields:
                raise RecipeError(
                    f"unknown setting '{key}' in {'a GAN' if is_gan else 'a'} train recipe. "
                    f"Settings: {', '.join(fields)}",
                    hint=did_you_mean(key, fields),
                )
            values[key] = _setting(key, value, fields[key].annotation)
        if not is_gan:
            values.setdefault("model", name)
            if "loss" in values and not is_cd:
                values["loss"] = _resolve_logits(values["loss"], models.get(values["model"]))
        elif "from_logits" not in values:
            disc = models.get(str(values.get("discriminator")))
            if disc is not None:
                values["from_logits"] = _last_op(disc) != "sigmoid"
        try:
            return cls(name=name, **values)
        except ValidationError as exc:
            raise _recipe_error(name, exc, values) from None


# -- recipe settings -------------------------------------------------------------------


def _setting(key: str, value: Any, annotation: Any) -> Any:
    if key in ("data", "validation") and isinstance(value, str | Path):
        text = str(value)
        return Dataset(name=text) if text.isidentifier() else DataFile(path=text)
    if key == "metrics" and isinstance(value, str):
        value = (value,)
    return spec_value(value, annotation)


def _last_op(model: Model | None) -> str | None:
    if model is None or len(model.outputs) != 1:
        return None
    last = {n.name: n for n in model.nodes}.get(model.outputs[0])
    return last.op if last is not None else None


def _resolve_logits(loss: Any, model: Model | None) -> Any:
    """An unspecified ``from_logits`` follows the model's last op, as in the language."""
    if not isinstance(loss, CrossEntropy | BinaryCrossEntropy):
        return loss
    if "from_logits" in loss.model_fields_set or model is None or len(model.outputs) != 1:
        return loss
    squash = "softmax" if isinstance(loss, CrossEntropy) else "sigmoid"
    return type(loss)(from_logits=_last_op(model) != squash)


def _recipe_error(name: str, exc: ValidationError, values: dict[str, Any]) -> NncError:
    err = exc.errors()[0]
    loc = [str(p) for p in err.get("loc", ())]
    key = loc[0] if loc else ""
    if err.get("type") == "missing":
        return RecipeError(f"train recipe '{name}': missing setting '{key}'")
    message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    return RecipeError(
        f"train recipe '{name}': setting '{key}': {message[:1].lower()}{message[1:]}. "
        f"Received: {values.get(key, err.get('input'))!r}"
    )
