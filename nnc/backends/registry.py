"""The backend registry: the one place that knows which backends exist.

Each :class:`BackendSpec` says what a backend is called (its name and aliases), what
it runs on (its framework, the ``pip`` extra that installs it, its devices), what it
can do (train, train data-parallel, across machines), which options its ``build``
takes, and where its runtime keeps the framework's own object. The CLI, the training
driver, the verifier and the library API all ask this module; none keeps a list of
backend names of its own.

>>> parse_backend("pytorch").name
'torch'
>>> [b.name for b in backends(trains=True)]
['numpy', 'torch', 'tensorflow']
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from nnc.errors import BackendError, did_you_mean


@dataclass(frozen=True)
class BackendSpec:
    """What nnc knows about one backend without importing it.

    - ``module``: the package with ``emit`` and ``build`` (and ``build_gan`` when it
      trains); importing it never imports the framework;
    - ``framework``: the packages ``build`` imports (``emit`` needs only the first for
      onnx, none for the others);
    - ``native``: the runtime attribute holding the framework's object (None: the
      runtime is that object);
    - ``build_options``: the keyword options ``build`` takes besides the weights;
    - ``parallel``: how data-parallel workers start (``"torchrun"``, nnc's
      ``"supervisor"``, or None: one process only), and ``multi_node`` whether they
      may span machines;
    - ``artefact``: what ``emit`` returns, ``"python"`` source or ``"onnx"`` bytes;
    - ``cd_step``: ``"module:function"`` of its contrastive divergence step (None:
      the backend trains no RBM), which takes the device when ``build`` does;
    - ``precisions``: how its supervised training may compute (``"float32"``, and
      ``"mixed"`` where ``build`` takes ``precision``; docs/training.md#precision).
    """

    name: str
    module: str
    framework: tuple[str, ...]
    extra: str
    aliases: tuple[str, ...] = ()
    trains: bool = False
    devices: tuple[str, ...] = ("cpu",)
    native: str | None = None
    build_options: tuple[str, ...] = ()
    parallel: str | None = None
    multi_node: bool = False
    artefact: str = "python"
    cd_step: str | None = None
    precisions: tuple[str, ...] = ("float32",)

    def __str__(self) -> str:
        return self.name

    # -- the backend's code, imported on demand -------------------------------------

    def load(self) -> ModuleType:
        """The backend package (``emit``, ``build``...); its framework is not imported."""
        try:
            return importlib.import_module(self.module)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(self.module):
                message = f"the {self.name} backend is not available in this build"
                raise BackendError(message) from None
            raise

    def emit(self, program: Any, model: str | None = None, **options: Any) -> str | bytes:
        """The backend's artefact (see :mod:`nnc.backends`); no framework is imported."""
        result: str | bytes = self.load().emit(program, model, **options)
        return result

    def build(self, program: Any, model: str | None = None, **options: Any) -> Any:
        """The backend's runtime (see :mod:`nnc.backends.runtime`), its framework
        imported now; a missing framework is an error naming the extra to install."""
        self.require()
        return self.load().build(program, model, **options)

    def build_gan(self, program: Any, recipe: Any, **options: Any) -> Any:
        """A GAN recipe's runtime (:class:`~nnc.backends.runtime.GanRuntime`)."""
        self.require_training()
        self.require()
        return self.load().build_gan(program, recipe, **options)

    def load_cd_step(self) -> Any:
        """The backend's contrastive divergence step (the framework is imported)."""
        if self.cd_step is None:
            trains = ", ".join(b.name for b in BACKENDS.values() if b.cd_step is not None)
            raise BackendError(
                f"the {self.name} backend has no contrastive divergence step; {trains} have one",
            )
        self.require()
        module, _, function = self.cd_step.partition(":")
        return getattr(importlib.import_module(module), function)

    def available(self) -> bool:
        """Whether every package ``build`` needs is installed (none is imported)."""
        return all(importlib.util.find_spec(package) is not None for package in self.framework)

    def require(self) -> None:
        """A clear error naming the extra to install when a framework is missing."""
        for package in self.framework:
            if importlib.util.find_spec(package) is None:
                raise BackendError(
                    f"the {self.name} backend needs {package}, which is not installed",
                    hint=f"pip install 'nnc[{self.extra}]'" if self.extra else None,
                )

    def require_training(self) -> None:
        if not self.trains:
            raise BackendError(
                f"the {self.name} backend cannot train. Received: --backend {self.name}",
                hint=f"train with {', '.join(b.name for b in backends(trains=True))}",
            )

    # -- options ---------------------------------------------------------------------

    def device_options(self, device: str | None) -> dict[str, Any]:
        """``{"device": device}`` for a backend that places its model, ``{}`` for a
        CPU-only one given ``cpu`` or nothing; a device it cannot use is an error."""
        if device is None:
            return {}
        known = sorted({d for b in BACKENDS.values() for d in b.devices})
        if device not in known:
            raise BackendError(f"unknown device '{device}'. Expected one of: {', '.join(known)}")
        if device not in self.devices:
            where = "the CPU" if self.devices == ("cpu",) else " or ".join(self.devices)
            raise BackendError(
                f"the {self.name} backend runs on {where} only. Received: --device {device}"
            )
        return {"device": device} if "device" in self.build_options else {}

    def precision_options(self, precision: str) -> dict[str, Any]:
        """``{"precision": precision}`` for a precision other than float32 that the
        backend trains in, ``{}`` for float32; any other is an error."""
        known = sorted({p for b in BACKENDS.values() for p in b.precisions})
        if precision not in known:
            raise BackendError(
                f"unknown precision '{precision}'. Expected one of: {', '.join(known)}"
            )
        if precision not in self.precisions:
            where = ", ".join(b.name for b in BACKENDS.values() if precision in b.precisions)
            raise BackendError(
                f"the {self.name} backend trains in float32 only. Received: --precision "
                f"{precision}",
                hint=f"--precision {precision} runs on {where}",
            )
        return {} if precision == "float32" else {"precision": precision}

    def options(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """The options of ``given`` that this backend's ``build`` takes (the others, such
        as a seed for a backend that draws nothing at random, do not apply to it);
        None values are left out, so the backend's defaults hold."""
        return {k: v for k, v in given.items() if v is not None and k in self.build_options}


BACKENDS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        BackendSpec(
            name="numpy",
            module="nnc.backends.numpy",
            framework=("numpy",),
            extra="",
            aliases=("np",),
            trains=True,
            build_options=("seed", "dtype"),
            cd_step="nnc.train.energy:cd_step",
        ),
        BackendSpec(
            name="torch",
            module="nnc.backends.torch",
            framework=("torch",),
            extra="torch",
            aliases=("pytorch",),
            trains=True,
            devices=("cpu", "cuda"),
            native="model",
            build_options=("seed", "device", "distributed", "timeout", "precision"),
            parallel="torchrun",
            multi_node=True,
            cd_step="nnc.backends.torch.energy:cd_step",
            precisions=("float32", "mixed"),
        ),
        BackendSpec(
            name="tensorflow",
            module="nnc.backends.tensorflow",
            framework=("tensorflow",),
            extra="tensorflow",
            aliases=("tf",),
            trains=True,
            native="model",
            build_options=("seed", "jit_compile", "strategy"),
            parallel="supervisor",
            cd_step="nnc.backends.tensorflow.energy:cd_step",
        ),
        BackendSpec(
            name="onnx",
            module="nnc.backends.onnx",
            framework=("onnx", "onnxruntime"),
            extra="onnx",
            native="session",
            build_options=("opset", "threads"),
            artefact="onnx",
        ),
    )
}

_BY_ALIAS: dict[str, str] = {alias: b.name for b in BACKENDS.values() for alias in b.aliases}


def parse_backend(name: str | BackendSpec) -> BackendSpec:
    """The backend a user named (a name or an alias, any case); an unknown one is a
    :class:`~nnc.errors.BackendError` with a did-you-mean. A spec already parsed is
    returned as it is, so a name is normalised once however far it is passed on."""
    if isinstance(name, BackendSpec):
        return name
    key = str(name).strip().lower()
    key = _BY_ALIAS.get(key, key)
    if key not in BACKENDS:
        spellings = [*BACKENDS, *_BY_ALIAS]
        raise BackendError(
            f"unknown backend '{name}'. Backends: {', '.join(BACKENDS)} "
            f"(also {', '.join(f'{a} = {n}' for a, n in _BY_ALIAS.items())}). Received: {name!r}",
            hint=did_you_mean(key, BACKENDS) or did_you_mean(key, spellings),
        )
    return BACKENDS[key]


def backends(
    *,
    trains: bool | None = None,
    parallel: bool | None = None,
    installed: bool = False,
    cd: bool | None = None,
) -> list[BackendSpec]:
    """The backends, in the registry's order, filtered by what they can do."""
    out = list(BACKENDS.values())
    if trains is not None:
        out = [b for b in out if b.trains == trains]
    if cd is not None:
        out = [b for b in out if (b.cd_step is not None) == cd]
    if parallel is not None:
        out = [b for b in out if (b.parallel is not None) == parallel]
    if installed:
        out = [b for b in out if b.available()]
    return out


def native_attribute(runtime: Any) -> str | None:
    """Where a runtime of any backend keeps the framework's object (see
    :attr:`BackendSpec.native`)."""
    name = getattr(runtime, "backend", None)
    if not isinstance(name, str) or name not in BACKENDS:
        raise BackendError(f"not a runtime of a known backend. Received: {type(runtime).__name__}")
    return BACKENDS[name].native


def framework_packages() -> tuple[str, ...]:
    """Every package some backend runs on, each once, in the registry's order."""
    return tuple(dict.fromkeys(p for b in BACKENDS.values() for p in b.framework))


__all__ = [
    "BACKENDS",
    "BackendSpec",
    "backends",
    "framework_packages",
    "native_attribute",
    "parse_backend",
]
