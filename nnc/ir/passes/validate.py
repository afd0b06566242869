"""Validation: Program -> Program, unchanged, or the first error found.

It checks what shape inference does not: identifiers, unique names, outputs, and
that every train recipe fits its models and its data. It expects a typed program
(run :func:`~nnc.ir.passes.infer.infer_shapes` first); :func:`check` runs both.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence

from nnc.errors import GraphError, NameResolutionError, RecipeError, ShapeError, did_you_mean
from nnc.ir.datasets import CATALOG, CORPORA
from nnc.ir.ops.energy import Rbm
from nnc.ir.ops.graph import Call
from nnc.ir.passes.params import model_params
from nnc.ir.program import Model, Program
from nnc.ir.training import (
    BinaryCrossEntropy,
    CdRecipe,
    CrossEntropy,
    Dataset,
    GanRecipe,
    Recipe,
    TextData,
    metric_name,
)
from nnc.ir.types import TensorType, numel

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
RESERVED = frozenset({"model", "block", "train", "input", "output", "true", "false"})
MAX_NAME_LENGTH = 128


def check_identifier(name: str, what: str) -> str | None:
    """Why ``name`` is not a valid nnc identifier, or None when it is.

    Identifiers reach generated Python code, so they must be ASCII identifiers and
    neither nnc nor Python keywords, nor dunder names.
    """
    if not IDENTIFIER.match(name):
        # A hostile name is quoted escaped, so the message itself stays one line.
        shown = name if name.isprintable() else name.encode("unicode_escape").decode("ascii")
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        return f"{what} '{shown}' is not a valid identifier (letters, digits, _; ASCII only)"
    if len(name) > MAX_NAME_LENGTH:
        return f"{what} is longer than {MAX_NAME_LENGTH} characters"
    if name in RESERVED or keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"{what} '{name}' is a reserved word"
    if name.startswith("__"):
        return f"{what} '{name}' may not start with '__'"
    return None


def validate(program: Program) -> Program:
    """Raise the first problem found in a typed program; return it unchanged otherwise."""
    for name, model in program.models.items():
        if name != model.name:
            raise GraphError(f"model stored as '{name}' is named '{model.name}'", model.span)
        _validate_model(model)
    for recipe in program.recipes.values():
        if isinstance(recipe, Recipe):
            _validate_supervised(program, recipe)
        elif isinstance(recipe, CdRecipe):
            _validate_cd(program, recipe)
        else:
            _validate_gan(program, recipe)
    return program


def _validate_model(model: Model) -> None:
    problem = check_identifier(model.name, "model name")
    if problem:
        raise NameResolutionError(problem, model.span)
    for decl in model.inputs:
        for dim in decl.type.shape:
            # Symbolic dims are written into generated code as string literals only, but
            # they must still read back as .nn text.
            if isinstance(dim, str) and not IDENTIFIER.match(dim):
                shown = dim.encode("unicode_escape").decode("ascii")[:60]
                raise NameResolutionError(
                    f"input '{decl.name}': the symbolic dim '{shown}' is not a valid identifier "
                    "(letters, digits, _; ASCII only)",
                    decl.span,
                )
    seen: set[str] = set()
    for item in (*model.inputs, *model.nodes):
        problem = check_identifier(item.name, "name")
        if problem:
            raise NameResolutionError(problem, item.span)
        if item.name in seen:
            raise NameResolutionError(
                f"duplicate name '{item.name}' in model '{model.name}'", item.span
            )
        seen.add(item.name)
    if not model.inputs:
        raise GraphError(f"model '{model.name}' declares no input", model.span)
    if not model.outputs:
        raise GraphError(f"model '{model.name}' has no output", model.span)
    for node in model.nodes:
        if not node.outs:
            raise ShapeError(f"node '{node.name}' is untyped; run shape inference", node.span)
    _check_outputs_read_inputs(model)


def _check_outputs_read_inputs(model: Model) -> None:
    """Every output is computed from a model input: a value made of nodes without
    tensor inputs alone (a ``param``) has no batch axis of its own (it is held with a
    batch of 1), so it cannot be a per-sample output."""
    reads = {i.name for i in model.inputs}
    for node in model.nodes:  # typed programs are in topological order
        if any(ref.partition(":")[0] in reads for ref in node.inputs):
            reads.add(node.name)
    for out in model.outputs:
        if out.partition(":")[0] not in reads:
            node = model.node(out.partition(":")[0])
            raise GraphError(
                f"output '{out}' of model '{model.name}' does not depend on any input "
                "(it is computed from params alone); compute each output from the inputs",
                node.span,
            )


def _model(
    program: Program, name: str, recipe: Recipe | GanRecipe | CdRecipe, setting: str
) -> Model:
    if name not in program.models:
        raise RecipeError(
            f"train recipe '{recipe.name}' names a missing model '{name}'",
            recipe.span_of(setting),
            hint=did_you_mean(name, program.models),
        )
    return program.models[name]


def _single_io(
    model: Model, recipe: Recipe | GanRecipe | CdRecipe, setting: str
) -> tuple[TensorType, TensorType]:
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise RecipeError(
            f"recipe '{recipe.name}' trains model '{model.name}', which has "
            f"{len(model.inputs)} inputs and {len(model.outputs)} outputs; "
            "training needs one of each",
            recipe.span_of(setting),
        )
    return model.inputs[0].type, model.output_types[0]


def _validate_supervised(program: Program, recipe: Recipe) -> None:
    model = _model(program, recipe.model, recipe, "model")
    x, y = _single_io(model, recipe, "model")
    if recipe.target == "input" and y != x:
        last = model.node(model.outputs[0].partition(":")[0]) if model.nodes else None
        origin = f" (from {last.model})" if isinstance(last, Call) else ""
        raise RecipeError(
            f"autoencoder '{recipe.name}' reconstructs its input, so the output of "
            f"'{model.name}' must be {x} like its input. Received: {y}{origin}",
            recipe.span_of("target"),
        )
    if isinstance(recipe.loss, CrossEntropy) and (y.rank == 0 or isinstance(y.shape[-1], str)):
        raise RecipeError(
            f"cross_entropy needs a static class axis; the output of '{model.name}' is {y}",
            recipe.span_of("loss"),
        )
    if isinstance(recipe.data, Dataset):
        _check_builtin(recipe, recipe.data, x, y if recipe.target == "labels" else None)
    if isinstance(recipe.data, TextData) or isinstance(recipe.validation, TextData):
        _check_text(recipe, x, y)
    has_validation = recipe.validation is not None and recipe.validation != 0
    check_monitor(recipe, [metric_name(m) for m in recipe.metrics], has_validation)
    if recipe.pretrain is not None:
        _check_pretrain(program, recipe, model)


def check_monitor(recipe: Recipe, metrics: Sequence[str], has_validation: bool) -> str:
    """The figure early stopping watches (``loss`` or ``val_loss`` without early
    stopping); one the recipe does not measure is a RecipeError at the setting."""
    measured = ["loss", *metrics]
    if has_validation:
        measured += [f"val_{n}" for n in measured]
    es = recipe.early_stopping
    if es is None:
        return "val_loss" if has_validation else "loss"
    if es.monitor not in measured:
        needs_val = es.monitor.startswith("val_") and not has_validation
        raise RecipeError(
            f"early_stopping monitors '{es.monitor}', "
            + (
                "which needs a validation set (add 'validation 0.2')"
                if needs_val
                else f"which this recipe does not measure. Measured: {', '.join(measured)}"
            ),
            recipe.span_of("early_stopping"),
            hint=None if needs_val else did_you_mean(es.monitor, measured),
        )
    return es.monitor


def _check_pretrain(program: Program, recipe: Recipe, model: Model) -> None:
    """``pretrain`` names a contrastive divergence recipe whose model this one calls."""
    from nnc.ir.weights import call_prefixes

    name = recipe.pretrain
    found = program.recipes.get(name) if name is not None else None
    if not isinstance(found, CdRecipe):
        cds = [k for k, r in program.recipes.items() if isinstance(r, CdRecipe)]
        raise RecipeError(
            f"recipe '{recipe.name}' pretrains with '{name}', which is "
            + ("not a contrastive divergence recipe" if found else "no recipe of this file")
            + f". Contrastive divergence recipes: {', '.join(cds) or 'none'}",
            recipe.span_of("pretrain"),
            hint=did_you_mean(str(name), cds),
        )
    uses = [p for p in call_prefixes(program, model.name, found.model) if p]
    if not uses:
        raise RecipeError(
            f"recipe '{recipe.name}' pretrains with '{found.name}', which trains model "
            f"'{found.model}'; model '{model.name}' must call '{found.model}' as a layer "
            "for its weights to start from the pretrained ones",
            recipe.span_of("pretrain"),
            hint=f"write '{found.model}' as a layer of '{model.name}', after its input",
        )
    stack = program.models.get(found.model)
    first = stack.nodes[0] if stack is not None and stack.nodes else None
    if getattr(first, "visible", "bernoulli") == "gaussian":
        raise RecipeError(
            f"recipe '{recipe.name}' pretrains with '{found.name}', whose first rbm has "
            "gaussian visible units: pretraining standardises every visible unit with its "
            "own statistics, which fine-tuning does not apply, so the pretrained weights "
            "would meet inputs on another scale",
            recipe.span_of("pretrain"),
            hint="pretrain with bernoulli visible units (data ..., binarize = true)",
        )


def _check_builtin(
    recipe: Recipe | GanRecipe | CdRecipe, data: Dataset, x: TensorType, y: TensorType | None
) -> None:
    info = CATALOG.get(data.name)
    if info is None:
        raise RecipeError(
            f"unknown dataset '{data.name}'. Available: {', '.join(sorted(CATALOG))}",
            recipe.span_of("data"),
            hint=did_you_mean(data.name, CATALOG),
        )
    if data.upscale != 1 and info.image is None:
        raise RecipeError(
            f"dataset '{data.name}' is not an image set; 'upscale' applies to images only",
            recipe.span_of("data"),
        )
    if data.binarize and info.value_range is None:
        raise RecipeError(
            f"dataset '{data.name}' has no fixed value range; 'binarize' applies to image "
            "sets such as digits",
            recipe.span_of("data"),
        )
    if data.binarize and data.scale != "none":
        raise RecipeError(
            f"dataset '{data.name}': 'binarize' makes every value 0 or 1, so it takes no "
            f"'scale'. Received: scale = {data.scale}",
            recipe.span_of("data"),
        )
    if data.scale != "none" and info.value_range is None:
        raise RecipeError(
            f"dataset '{data.name}' has no fixed value range; 'scale = {data.scale}' applies "
            "to image sets such as digits",
            recipe.span_of("data"),
            hint="use 'standardize true' to rescale other data",
        )
    features = info.feature_shape(data.upscale)
    want = numel(features)
    have = numel(x.shape)
    if isinstance(have, int) and have != want:
        raise RecipeError(
            f"dataset '{data.name}' has samples of shape {list(features)} ({want} values) "
            f"but the model input is {x} ({have} values)",
            recipe.span_of("data"),
        )
    if isinstance(have, str) and len(x.shape) != len(features):
        raise RecipeError(
            f"dataset '{data.name}' has samples of shape {list(features)} but the model "
            f"input is {x}",
            recipe.span_of("data"),
        )
    if y is None or not isinstance(recipe, Recipe):
        return
    last = y.shape[-1] if y.rank else 1
    if info.target == "class":
        loss = recipe.loss
        if isinstance(loss, CrossEntropy):
            if last != info.classes:
                raise RecipeError(
                    f"dataset '{data.name}' has {info.classes} classes but the model outputs {y}",
                    recipe.span_of("loss"),
                )
        elif isinstance(loss, BinaryCrossEntropy) and info.classes == 2 and last == 1:
            pass
        else:
            raise RecipeError(
                f"dataset '{data.name}' has class labels; use loss cross_entropy "
                f"(received {loss.kind})",
                recipe.span_of("loss"),
            )
    elif numel(y.shape) != info.target_size:
        raise RecipeError(
            f"dataset '{data.name}' has targets of shape {list(info.target_shape)} but the "
            f"model outputs {y}",
            recipe.span_of("data"),
        )


def _check_text(recipe: Recipe, x: TensorType, y: TensorType) -> None:
    """Text data trains a language model: windows ``int64[L]`` in, ``[L, V]`` out (V
    the vocabulary's size, known here for a bundled corpus), cross-entropy."""
    data = recipe.data
    if not isinstance(data, TextData):
        raise RecipeError(
            f"recipe '{recipe.name}' validates on text but trains on other data; "
            "text validation data goes with text training data",
            recipe.span_of("validation"),
        )
    if data.corpus is not None and data.corpus not in CORPORA:
        raise RecipeError(
            f"unknown text corpus '{data.corpus}'. Available: {', '.join(sorted(CORPORA))}",
            recipe.span_of("data"),
            hint=did_you_mean(data.corpus, CORPORA),
        )
    if x.dtype != "int64" or x.rank != 1 or not isinstance(x.shape[0], int):
        raise RecipeError(
            f"{data.label} trains a language model, whose input is a window of class "
            f"numbers int64[L] with a fixed length L. Received: input {x}",
            recipe.span_of("data"),
        )
    if not isinstance(recipe.loss, CrossEntropy) or recipe.target != "labels":
        raise RecipeError(
            f"{data.label} gives the next character of every position as a label; "
            f"train it with loss cross_entropy (received {recipe.loss.kind})",
            recipe.span_of("loss"),
        )
    if recipe.standardize:
        raise RecipeError(
            f"{data.label}: class numbers are not standardised; remove 'standardize'",
            recipe.span_of("standardize"),
        )
    length = x.shape[0]
    known = data.corpus is not None and data.vocabulary is None
    if known:
        chars = CORPORA[str(data.corpus)].characters
        fits, wanted = y.shape == (length, chars), f"[{length}, {chars}]"
    else:  # a file's vocabulary is read with the data
        fits, wanted = y.rank == 2 and y.shape[0] == length, f"[{length}, characters]"
    if not fits:
        has = f"has {chars} distinct characters, so " if known else "gives "
        raise RecipeError(
            f"{data.label} {has}the model must output one row of class scores per "
            f"position, {wanted}. Received: {y}",
            recipe.span_of("data"),
        )


def _refuse_text(recipe: GanRecipe | CdRecipe) -> None:
    if isinstance(recipe.data, TextData):
        raise RecipeError(
            f"{recipe.data.label} trains a language model, with a supervised recipe "
            f"(loss cross_entropy); recipe '{recipe.name}' is not one",
            recipe.span_of("data"),
        )


def _validate_gan(program: Program, recipe: GanRecipe) -> None:
    _refuse_text(recipe)
    gen = _model(program, recipe.generator, recipe, "generator")
    disc = _model(program, recipe.discriminator, recipe, "discriminator")
    z, fake = _single_io(gen, recipe, "generator")
    real, verdict = _single_io(disc, recipe, "discriminator")
    if z.rank != 1 or isinstance(z.shape[0], str):
        raise RecipeError(
            f"generator '{gen.name}' must take a noise vector [size]. Received: input {z}",
            recipe.span_of("generator"),
        )
    if z.shape != (recipe.noise.size,):
        raise RecipeError(
            f"the noise must fit generator '{gen.name}', which takes {z}: expected noise "
            f"size {z.shape[0]}. Received: noise {recipe.noise.dist}, {recipe.noise.size}",
            recipe.span_of("noise"),
        )
    if verdict.shape != (1,):
        raise RecipeError(
            f"discriminator '{disc.name}' must output one score per sample ([1]). "
            f"Received: {verdict}",
            recipe.span_of("discriminator"),
            hint="end the discriminator with dense(1) (a logit) or dense(1) sigmoid",
        )
    if fake != real:
        raise RecipeError(
            f"generator '{gen.name}' must output what discriminator '{disc.name}' takes, "
            f"{real}. Received: {fake}",
            recipe.span_of("generator"),
        )
    for role, model in (("generator", gen), ("discriminator", disc)):
        if not any(p.spec.trainable and not p.spec.buffer for p in model_params(program, model)):
            raise RecipeError(
                f"{role} '{model.name}' has no trainable parameters; a GAN trains both models",
                recipe.span_of(role),
            )
    if isinstance(recipe.data, Dataset):
        info = CATALOG.get(recipe.data.name)
        features = info.feature_shape(recipe.data.upscale) if info else ()
        if info is not None and numel(features) != numel(fake.shape):
            raise RecipeError(
                f"generator '{gen.name}' must output samples like those of dataset "
                f"'{recipe.data.name}', {list(features)} ({numel(features)} values). "
                f"Received: {fake} ({numel(fake.shape)} values)",
                recipe.span_of("generator"),
            )
        _check_builtin(recipe, recipe.data, real, None)


def _check_gaussian(recipe: CdRecipe, model: Model, node: Rbm) -> None:
    """Gaussian visible units (unit variance) model real values that the recipe
    standardises per unit: only the first rbm of a stack sees such values (the ones
    above see the probabilities of the layer below, in (0, 1)), and a built-in data
    set's ``binarize`` (0/1 values, what Bernoulli units model) or ``scale`` (undone by
    the standardisation) contradicts them."""
    if node.inputs != (model.inputs[0].name,):
        raise RecipeError(
            f"'{node.name}' has gaussian visible units, but its visible units are the "
            f"hidden probabilities of '{node.inputs[0]}', in (0, 1); only the first rbm of a "
            "stack may have gaussian visible units",
            node.span,
            hint="drop visible = gaussian from this layer",
        )
    data = recipe.data
    if isinstance(data, Dataset) and data.binarize:
        raise RecipeError(
            f"'{node.name}' has gaussian visible units, which model real values; "
            "binarize = true makes every value 0 or 1, what Bernoulli visible units model",
            recipe.span_of("data"),
            hint="drop binarize = true, or drop visible = gaussian",
        )
    if isinstance(data, Dataset) and data.scale != "none":
        raise RecipeError(
            f"'{node.name}' has gaussian visible units, so the samples are standardised per "
            f"unit (mean 0, variance 1), which undoes scale = {data.scale}",
            recipe.span_of("data"),
            hint=f"drop scale = {data.scale}",
        )


def _validate_cd(program: Program, recipe: CdRecipe) -> None:
    """A contrastive divergence recipe trains a model that is its input followed by
    rbm layers, each feeding the next (one layer: an RBM; several: a deep belief
    network's stack, pretrained greedily), on samples with values in [0, 1]."""
    _refuse_text(recipe)
    model = _model(program, recipe.model, recipe, "model")
    x, _ = _single_io(model, recipe, "model")
    previous = model.inputs[0].name
    for node in model.nodes:
        if node.op != "rbm" or node.inputs != (previous,):
            after = f"after '{previous}'" if node.inputs == (previous,) else "off the chain"
            raise GraphError(
                f"train recipe '{recipe.name}' trains model '{model.name}' by contrastive "
                f"divergence, so the model must be its input followed by rbm layers, each "
                f"feeding the next. Received: '{node.name}' ({node.op}) {after}",
                node.span,
                hint="train the rbm stack as a model of its own, and call it from the "
                "supervised model",
            )
        if getattr(node, "visible", "bernoulli") == "gaussian":
            _check_gaussian(recipe, model, node)
        if not getattr(node, "trainable", True):
            raise RecipeError(
                f"'{node.name}' is frozen (trainable = false), yet recipe '{recipe.name}' "
                "trains it by contrastive divergence",
                node.span,
            )
        previous = node.name
    if not model.nodes or model.outputs != (previous,):
        raise GraphError(
            f"train recipe '{recipe.name}' trains model '{model.name}' by contrastive "
            f"divergence; its output must be its last rbm layer. Received: outputs "
            f"{', '.join(model.outputs)}",
            model.span if not model.nodes else model.nodes[-1].span,
        )
    gaussian = getattr(model.nodes[0], "visible", "bernoulli") == "gaussian"
    if isinstance(recipe.data, Dataset):
        _check_builtin(recipe, recipe.data, x, None)
        info = CATALOG[recipe.data.name]
        lo, hi = info.value_range or (None, None)
        unit = gaussian or recipe.data.binarize or recipe.data.scale == "unit"
        if not unit and not (lo is not None and hi is not None and lo >= 0 and hi <= 1):
            shown = f"[{lo:g}, {hi:g}]" if lo is not None and hi is not None else "unbounded"
            raise RecipeError(
                f"the rbm's Bernoulli visible units take values in [0, 1]; dataset "
                f"'{recipe.data.name}' ranges over {shown}",
                recipe.span_of("data"),
                hint=f"data {recipe.data.name}, binarize = true (or scale = unit)",
            )
