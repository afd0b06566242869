"""Lowering train recipes: settings -> a typed Recipe, GanRecipe or CdRecipe."""

from __future__ import annotations

from collections.abc import Mapping
from typing import get_args, get_origin

from pydantic import BaseModel

from nnc.dsl import ast
from nnc.dsl.bind import Binder, Chooser, construct, field_annotation
from nnc.errors import ArgumentError, RecipeError, did_you_mean
from nnc.ir.program import Model
from nnc.ir.training import (
    BinaryCrossEntropy,
    CdRecipe,
    CrossEntropy,
    DataFile,
    Dataset,
    GanRecipe,
    Recipe,
    TextData,
)


def lower_recipe(
    d: ast.TrainDef, models: Mapping[str, Model], choose: Chooser | None = None
) -> Recipe | GanRecipe | CdRecipe:
    """A train recipe: each setting bound to its typed field; a recipe naming a
    generator or discriminator is a GAN recipe, one whose optimizer is ``cd(...)`` an
    energy-based (contrastive divergence) recipe."""
    settings: dict[str, ast.Setting] = {}
    for s in d.settings:
        if s.key in settings:
            raise RecipeError(f"setting '{s.key}' is given twice", s.key_span)
        settings[s.key] = s
    is_gan = "generator" in settings or "discriminator" in settings
    is_cd = _names_cd(settings.get("optimizer"))
    if is_cd and is_gan:
        raise RecipeError(
            "contrastive divergence (optimizer cd) trains rbm layers, not a GAN; "
            "a GAN's optimizers are adagrad, adam, rmsprop or sgd",
            settings["optimizer"].args[0].span,
        )
    if is_cd and "loss" in settings:
        raise RecipeError(
            "contrastive divergence (optimizer cd) has no loss: it follows the RBM's "
            "log-likelihood gradient, approximated by a Gibbs chain; remove 'loss'",
            settings["loss"].key_span,
            hint="the run reports the reconstruction error and the (pseudo-)log-likelihood",
        )
    cls: type[Recipe] | type[GanRecipe] | type[CdRecipe] = (
        GanRecipe if is_gan else CdRecipe if is_cd else Recipe
    )
    what = f"train recipe '{d.name}'"
    keys = {
        k: f
        for k, f in cls.model_fields.items()
        if k not in ("kind", "name", "span", "setting_spans")
    }
    binder = Binder(choose=choose)
    values: dict[str, object] = {}
    for key, s in settings.items():
        if key not in keys:
            kind = "a GAN" if is_gan else "a contrastive divergence" if is_cd else "a"
            raise RecipeError(
                f"unknown setting '{key}' in {kind} train recipe. Settings: {', '.join(keys)}",
                s.key_span,
                hint=did_you_mean(key, keys),
            )
        with binder.at(key):
            values[key] = _setting(binder, s, field_annotation(keys[key]), what)
    if not is_gan and "model" not in values:
        values["model"] = d.name
    if cls is Recipe and "loss" in settings:
        values["loss"] = _resolve_logits(models, values, settings["loss"])
    if is_gan and "from_logits" not in values:
        disc = models.get(str(values.get("discriminator")))
        if disc is not None and len(disc.outputs) == 1:
            last = {n.name: n for n in disc.nodes}.get(disc.outputs[0])
            values["from_logits"] = not (last is not None and last.op == "sigmoid")
    spans = {k: s.span for k, s in settings.items()}
    spans.setdefault("model", d.name_span)
    return construct(
        cls,
        {**values, "name": d.name, "span": d.name_span, "setting_spans": spans},
        what,
        d.name_span,
        arg_spans=spans,
    )


def _names_cd(setting: ast.Setting | None) -> bool:
    """Whether an ``optimizer`` setting names contrastive divergence (``cd``, ``cd(...)``)."""
    if setting is None or len(setting.args) != 1 or setting.args[0].name is not None:
        return False
    value = setting.args[0].value
    return isinstance(value, ast.Ref | ast.Call) and value.name == "cd"


def _setting(binder: Binder, s: ast.Setting, annotation: object, what: str) -> object:
    where = f"{what}: setting '{s.key}'"
    if s.key in ("data", "validation"):
        first = s.args[0] if s.args else None
        if first is not None and first.name is None:
            if isinstance(first.value, ast.String):
                return binder.bind(DataFile, s.args, f"{s.key} file", s.span)
            if isinstance(first.value, ast.Ref):
                return binder.bind(Dataset, s.args, f"{s.key} set", s.span)
            if isinstance(first.value, ast.Call) and first.value.name == "text":
                if len(s.args) > 1:
                    raise ArgumentError(
                        f"{where} takes one text(...); its options go inside the parentheses",
                        s.args[1].span,
                    )
                return _text_source(binder, first.value, f"{s.key} text")
    cls = _plain_spec(annotation)
    if cls is not None:
        return binder.bind(cls, s.args, s.key, s.span)
    if _is_tuple(annotation):
        element = _tuple_element(annotation)
        for a in s.args:
            if a.name is not None:
                raise ArgumentError(f"{where} takes a list of values, not '{a.name} = ...'", a.span)
        return tuple(binder.convert(a.value, element, where) for a in s.args)
    if len(s.args) != 1 or s.args[0].name is not None:
        raise ArgumentError(f"{where} takes exactly one value", s.span)
    return binder.convert(s.args[0].value, annotation, where)


def _text_source(binder: Binder, call: ast.Call, what: str) -> TextData:
    """``text(sonnets)`` (a bundled corpus) or ``text("notes.txt")`` (a file), with
    keyword options: the first positional argument says which by its kind."""
    args = list(call.args)
    first = args[0] if args else None
    if first is None or first.name is not None:
        raise ArgumentError(
            f'{what} takes a corpus name or a file path first: text(sonnets) or text("notes.txt")',
            call.span,
        )
    if isinstance(first.value, ast.Ref):
        key = "corpus"
    elif isinstance(first.value, ast.String):
        key = "path"
    else:
        raise ArgumentError(
            f"{what}: expected a corpus name (sonnets) or a file path in quotes",
            first.span,
        )
    for a in args[1:]:
        if a.name is None:
            raise ArgumentError(
                f"{what} takes one positional argument; name the others (vocabulary = ...)",
                a.span,
            )
        if a.name in ("corpus", "path"):
            raise ArgumentError(f"{what}: the text is given first, not as '{a.name} = ...'", a.span)
    args[0] = ast.Arg(name=key, value=first.value, span=first.span)
    found = binder.bind(TextData, args, what, call.span)
    assert isinstance(found, TextData)
    return found


def _resolve_logits(
    models: Mapping[str, Model], values: dict[str, object], setting: ast.Setting
) -> object:
    """Default ``from_logits`` from the model's last op when the user did not say."""
    loss = values["loss"]
    if not isinstance(loss, CrossEntropy | BinaryCrossEntropy):
        return loss
    arg = setting.args[0].value if setting.args else None
    if isinstance(arg, ast.Call) and arg.args:
        return loss  # given explicitly (positionally or by keyword)
    model = models.get(str(values["model"]))
    if model is None or len(model.outputs) != 1:
        return loss
    last = {n.name: n for n in model.nodes}.get(model.outputs[0])
    squash = "softmax" if isinstance(loss, CrossEntropy) else "sigmoid"
    from_logits = not (last is not None and last.op == squash)
    return loss.model_copy(update={"from_logits": from_logits})


def _plain_spec(annotation: object) -> type[BaseModel] | None:
    """The settings class (EarlyStopping, Noise) that a setting binds to directly."""
    for c in (annotation, *get_args(annotation)):
        if isinstance(c, type) and issubclass(c, BaseModel) and "kind" not in c.model_fields:
            return c
    return None


def _is_tuple(annotation: object) -> bool:
    return get_origin(annotation) is tuple


def _tuple_element(annotation: object) -> object:
    return get_args(annotation)[0]
