"""Training recipes built in Python: a builder's ``train(**settings)`` as IR
(:class:`~nnc.builder.model.ProgramBuilder` holds the models and calls this)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nnc.builder.binding import spec_value
from nnc.errors import NncError, RecipeError, did_you_mean
from nnc.ir.program import Model
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


def recipe_of(
    name: str, settings: dict[str, Any], models: dict[str, Model]
) -> Recipe | GanRecipe | CdRecipe:
    """The recipe ``name`` from a builder's ``train(**settings)``, its models known."""
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
