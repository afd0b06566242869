"""Recipes as the driver uses them: selected, resolved, fingerprinted.

A *resolved* recipe has the command line's overrides (epochs, batch, seed) applied and
its data paths made absolute. Its fingerprint covers the models it trains and every
setting except ``epochs``, which only says when to stop: resuming a run with more
epochs continues it, while any other change is refused unless forced.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal, TypeVar

from nnc.data.preparation import resolve_path
from nnc.errors import NameResolutionError, RecipeError, did_you_mean
from nnc.ir.ops.graph import Call
from nnc.ir.program import Model, Program
from nnc.ir.training import CdRecipe, DataFile, GanRecipe, Recipe, TextData

AnyRecipe = TypeVar("AnyRecipe", Recipe, GanRecipe, CdRecipe)


def select_recipe(program: Program, name: str | None, file: str = "the program") -> Recipe:
    """The supervised recipe to evaluate or predict with: by name, or the only one."""
    recipe = select_any_recipe(program, name, file)
    if isinstance(recipe, CdRecipe):
        raise RecipeError(
            f"recipe '{recipe.name}' trains an RBM by contrastive divergence, which has no "
            "targets to evaluate or predict; nnc eval and nnc predict take supervised recipes",
            recipe.span,
            hint=f"its trained model computes the hidden units' probabilities: nnc export "
            f"FILE --model {recipe.model} --weights RUN",
        )
    if isinstance(recipe, GanRecipe):
        raise RecipeError(
            f"recipe '{recipe.name}' trains a GAN, which has no targets to evaluate or predict; "
            "nnc eval and nnc predict take supervised recipes",
            recipe.span,
            hint=f"export the trained generator with: nnc export FILE --model {recipe.generator} "
            "--weights RUN -o generator.onnx",
        )
    return recipe


def select_any_recipe(
    program: Program, name: str | None, file: str = "the program"
) -> Recipe | GanRecipe | CdRecipe:
    """The recipe to train (supervised, GAN or contrastive divergence): by name, or the
    only one."""
    if name is not None:
        if name not in program.recipes:
            raise NameResolutionError(
                f"{file} has no train recipe '{name}'. Recipes: "
                f"{', '.join(program.recipes) or 'none'}",
                hint=did_you_mean(name, program.recipes),
            )
        recipe = program.recipes[name]
    elif not program.recipes:
        raise RecipeError(f"{file} has no train recipe; add a 'train <Model> {{ ... }}' block")
    elif len(_final_recipes(program)) == 1:
        recipe = program.recipes[_final_recipes(program)[0]]
    elif len(program.recipes) > 1:
        raise RecipeError(
            f"{file} has {len(program.recipes)} train recipes ({', '.join(program.recipes)}); "
            "choose one with --recipe NAME"
        )
    else:
        recipe = next(iter(program.recipes.values()))
    return recipe


def _final_recipes(program: Program) -> list[str]:
    """The recipes no other recipe pretrains with (the one to train, by default, when
    the others only pretrain it)."""
    first = {r.pretrain for r in program.recipes.values() if isinstance(r, Recipe)}
    return [name for name in program.recipes if name not in first]


def resolve_recipe(
    recipe: AnyRecipe,
    *,
    epochs: int | None = None,
    batch: int | Literal["all"] | None = None,
    seed: int | None = None,
    base: Path | None = None,
) -> AnyRecipe:
    """The recipe with command-line overrides and absolute data paths."""
    update: dict[str, Any] = {}
    if epochs is not None:
        update["epochs"] = epochs
    if batch is not None:
        update["batch"] = batch
    if seed is not None:
        update["seed"] = seed
    if isinstance(recipe.data, DataFile | TextData):
        update["data"] = _absolute(recipe.data, base)
    if isinstance(recipe, Recipe) and isinstance(recipe.validation, DataFile | TextData):
        update["validation"] = _absolute(recipe.validation, base)
    return recipe.model_copy(update=update) if update else recipe


def _absolute(source: DataFile | TextData, base: Path | None) -> DataFile | TextData:
    """The source with its file paths (a text's vocabulary too) made absolute."""
    update = {}
    for key in ("path", "vocabulary"):
        value = getattr(source, key, None)
        if value is not None:
            update[key] = str(resolve_path(value, base).resolve())
    return source.model_copy(update=update)


def models_of(program: Program, name: str) -> dict[str, Model]:
    """A model and every model it calls, callees first."""
    found: dict[str, Model] = {}

    def visit(n: str) -> None:
        if n in found:
            return
        model = program.models[n]
        for node in model.nodes:
            if isinstance(node, Call):
                visit(node.model)
        found[n] = model

    visit(name)
    return found


def trained_models(program: Program, recipe: Recipe | GanRecipe | CdRecipe) -> dict[str, Model]:
    """The models a recipe trains (a GAN's two) and every model they call."""
    found: dict[str, Model] = {}
    for name in recipe.models:
        found.update(models_of(program, name))
    first = pretrain_recipe(program, recipe)
    if first is not None:
        found.update(models_of(program, first.model))
    return found


def pretrain_recipe(program: Program, recipe: Recipe | GanRecipe | CdRecipe) -> CdRecipe | None:
    """The contrastive divergence recipe a supervised recipe pretrains with, if any."""
    name = recipe.pretrain if isinstance(recipe, Recipe) else None
    found = program.recipes.get(name) if name is not None else None
    return found if isinstance(found, CdRecipe) else None


def recipe_program(program: Program, recipe: Recipe | GanRecipe | CdRecipe) -> Program:
    """A program holding just the recipe and the models it trains (and the recipe it
    pretrains with)."""
    recipes: dict[str, Recipe | GanRecipe | CdRecipe] = {recipe.name: recipe}
    first = pretrain_recipe(program, recipe)
    if first is not None:
        recipes = {first.name: first, **recipes}
    return Program(models=trained_models(program, recipe), recipes=recipes)


def _plain(value: Any) -> Any:
    """JSON data without source spans."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != "span" and not k.endswith("_spans")}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def recipe_document(program: Program, recipe: Recipe | GanRecipe | CdRecipe) -> dict[str, Any]:
    """The resolved recipe and its models as plain JSON data (what checkpoints keep),
    with the recipe it pretrains with, if any."""
    document = {
        "models": {
            n: _plain(m.model_dump(mode="json")) for n, m in trained_models(program, recipe).items()
        },
        "recipe": _plain(recipe.model_dump(mode="json")),
    }
    first = pretrain_recipe(program, recipe)
    if first is not None:
        document["pretrain"] = _plain(first.model_dump(mode="json"))
    return document


def fingerprint(document: dict[str, Any]) -> str:
    """SHA-256 of the document without ``epochs`` (the pretraining's counts)."""
    recipe = {k: v for k, v in document["recipe"].items() if k != "epochs"}
    whole = {"models": document["models"], "recipe": recipe}
    if "pretrain" in document:
        whole["pretrain"] = document["pretrain"]
    text = json.dumps(whole, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def describe_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two recipe documents, one phrase per setting or model."""
    changes: list[str] = []
    old_r, new_r = old.get("recipe", {}), new.get("recipe", {})
    for key in sorted(set(old_r) | set(new_r)):
        if key == "epochs" or old_r.get(key) == new_r.get(key):
            continue
        changes.append(f"{key} {_short(old_r.get(key))} -> {_short(new_r.get(key))}")
    old_m, new_m = old.get("models", {}), new.get("models", {})
    for name in sorted(set(old_m) | set(new_m)):
        if old_m.get(name) != new_m.get(name):
            changes.append(f"model '{name}' changed")
    return changes


def _short(value: Any) -> str:
    if isinstance(value, dict):
        kind = value.get("kind")
        args = ", ".join(f"{k} = {_short(v)}" for k, v in value.items() if k != "kind")
        return f"{kind}({args})" if kind else "{" + args + "}"
    return json.dumps(value)
