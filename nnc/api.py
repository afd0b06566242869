"""Emit code and build ready models from Python, on any backend.

- :func:`emit`: the backend's artefact: Python source for numpy, torch and
  tensorflow; a serialized ONNX ModelProto (``bytes``) for onnx. No framework is
  imported.
- :func:`gan_runtime`: a GAN recipe's :class:`~nnc.backends.runtime.GanRuntime`
  (generate, discriminator_step, generator_step, ...).
- :func:`runtime`: a :class:`~nnc.backends.runtime.Runtime` (forward, train_step,
  weights...), the interface ``nnc train`` uses.
- :func:`fit`: train a recipe of a program or of a ``.nn`` file, as ``nnc train``
  does (in a notebook, with one progress display).
- :func:`build`: the framework's own object, ready to use: a torch ``nn.Module``, a
  Keras model or ``tf.Module``, an onnxruntime ``InferenceSession``, or for numpy the
  generated NumPy model object (which is its runtime).

Backends are imported when called, never by ``import nnc``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnc.errors import BackendError
from nnc.ir.program import Program

if TYPE_CHECKING:
    import numpy as np

    from nnc.backends.runtime import GanRuntime, Runtime
    from nnc.train.loop import TrainResult
    from nnc.train.progress import QuietReporter
    from nnc.train.tracking import Tracking

WeightsArg = Mapping[str, "np.ndarray"] | str | Path | None


def emit(
    program: Program,
    backend: str = "numpy",
    model: str | None = None,
    *,
    source: str = "<program>",
    **options: Any,
) -> str | bytes:
    """The generated artefact for ``model`` (default: the trained or only model).

    ``options`` go to the backend's ``emit`` (``opset=`` and ``weights=`` for onnx;
    weights may be a mapping or a weights file, as for :func:`build`).
    """
    from nnc.backends.registry import parse_backend

    if options.get("weights") is not None:
        options["weights"] = _weights(program, model, options["weights"])
    return parse_backend(backend).emit(program, model, source=source, **options)


def runtime(
    program: Program,
    backend: str = "numpy",
    model: str | None = None,
    *,
    weights: WeightsArg = None,
    **options: Any,
) -> Runtime:
    """A runtime of ``model`` on ``backend``: its framework is imported now.

    ``weights`` are canonical weights (a mapping, or a weights file or training
    checkpoint: safetensors, or the ``.npz`` of an earlier nnc); without them, the
    initial weights drawn from the seed.
    ``options`` go to the backend's ``build`` (``device=``, ``seed=``...).
    """
    from nnc.backends.registry import parse_backend

    spec = parse_backend(backend)
    spec.require()
    loaded = _weights(program, model, weights)
    built: Runtime = spec.build(program, model, weights=loaded, **options)
    return built


def gan_runtime(
    program: Program,
    backend: str = "numpy",
    recipe: str | None = None,
    *,
    weights: WeightsArg = None,
    **options: Any,
) -> GanRuntime:
    """A :class:`~nnc.backends.runtime.GanRuntime` of a GAN recipe (default: the only
    one) on ``backend`` (numpy, torch or tensorflow): both models and both optimizers,
    the runtime ``nnc train`` uses for a GAN.

    ``weights`` hold both models under their roles (``generator/<param>``): a mapping,
    or a weights file or checkpoint of a GAN run; without them, the initial weights
    drawn from the seed. ``options`` go to the backend's ``build_gan``.
    """
    from nnc.backends.gancode import select_gan
    from nnc.backends.registry import parse_backend
    from nnc.ir.weights import check_gan_weights, read_weights_file

    spec = parse_backend(backend)
    spec.require_training()
    spec.require()
    gan = select_gan(program, recipe)
    loaded = None
    if weights is not None:
        source = str(weights) if isinstance(weights, str | Path) else "weights"
        arrays = read_weights_file(weights) if isinstance(weights, str | Path) else weights
        loaded = check_gan_weights(program, gan, arrays, source)
    runtime: GanRuntime = spec.build_gan(program, gan, weights=loaded, **options)
    return runtime


def build(
    program: Program,
    backend: str = "numpy",
    model: str | None = None,
    *,
    weights: WeightsArg = None,
    **options: Any,
) -> Any:
    """The framework's own object for ``model``, with ``weights`` loaded:
    ``nn.Module`` (torch), Keras model or ``tf.Module`` (tensorflow),
    ``InferenceSession`` (onnx), the NumPy model object (numpy)."""
    return native(runtime(program, backend, model, weights=weights, **options))


def native(rt: Runtime) -> Any:
    """The framework object behind a runtime (the registry's
    :attr:`~nnc.backends.registry.BackendSpec.native` attribute)."""
    from nnc.backends.registry import native_attribute

    attribute = native_attribute(rt)
    backend = rt.backend
    if attribute is None:
        return rt
    if not hasattr(rt, attribute):
        raise BackendError(
            f"the {backend} runtime does not expose its native object as '{attribute}'"
        )
    return getattr(rt, attribute)


def _weights(
    program: Program, model: str | None, weights: WeightsArg
) -> dict[str, np.ndarray] | None:
    if weights is None:
        return None
    from nnc.backends.codegen import select
    from nnc.ir.weights import check_weights, load_weights

    m, _ = select(program, model)
    if isinstance(weights, str | Path):
        return load_weights(weights, program, m)
    return check_weights(program, m, weights)


__all__ = ["build", "emit", "gan_runtime", "native", "runtime"]


def fit(
    spec: Program | str | Path,
    recipe: str | None = None,
    *,
    reporter: QuietReporter | None = None,
    should_stop: Callable[[], bool] | None = None,
    build: Callable[..., Any] | None = None,
    tracking: Tracking | None = None,
    **options: Any,
) -> TrainResult:
    """Train ``recipe`` (default: the only one) of ``spec``, a checked program or the
    path of a ``.nn`` file, and return its :class:`~nnc.train.loop.TrainResult`.

    ``options`` are the fields of :class:`~nnc.train.options.RunOptions`
    (``backend``, ``epochs``, ``out``, ``save``...), by keyword; ``reporter``,
    ``should_stop``, ``build`` and ``tracking`` are :func:`nnc.train.train`'s. For a
    path, relative data paths start from the file's folder, as with
    ``nnc train FILE``. In a Jupyter notebook the run shows as one display that
    updates in place, unless ``reporter`` says otherwise.
    """
    from nnc.dsl import load
    from nnc.train import train
    from nnc.train.options import run_options

    if not isinstance(spec, Program):
        options.setdefault("base", Path(spec).resolve().parent)
        spec = load(Path(spec))
    return train(
        spec,
        recipe,
        run_options(**options),
        reporter=reporter,
        should_stop=should_stop,
        build=build,
        tracking=tracking,
    )
