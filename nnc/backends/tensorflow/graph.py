"""Lowering one IR model to a ``keras.Model`` subclass.

The class builds its layers in ``__init__`` (one attribute per node that holds
parameters, named after the node) and runs the graph in ``call``, one local
variable per IR value, named after it. Inputs and outputs are canonical
(channels-first); inside, values that feed convolutions, pooling and the other
channel-wise ops are kept channels-last, the layout TensorFlow's CPU kernels want.
The emitter tracks each value's layout and writes a transpose only where a consumer
needs the other one (a flatten, for instance, transposes back so that its feature
order, and therefore the next dense layer's weights, are canonical).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nnc.backends.codegen import CodeWriter, py_identifier, py_literal
from nnc.errors import UnsupportedOpError
from nnc.ir.base import Op
from nnc.ir.ops.attention import Attention
from nnc.ir.ops.graph import Call
from nnc.ir.ops.normalization import BatchNorm
from nnc.ir.ops.reshape import Dropout
from nnc.ir.program import Model, Program
from nnc.ir.types import TensorType

FIRST = "channels_first"
LAST = "channels_last"

# Attributes of keras.Model (Keras 3.15's public ones; tests/backends/tensorflow check
# the installed Keras against this list) and of the generated model classes, which a
# layer attribute must not shadow.
MODULE_ATTRIBUTES = frozenset(
    {
        "add_loss",
        "add_metric",
        "add_variable",
        "add_weight",
        "build",
        "build_from_config",
        "call",
        "compile",
        "compile_from_config",
        "compiled_loss",
        "compiled_metrics",
        "compute_dtype",
        "compute_loss",
        "compute_mask",
        "compute_metrics",
        "compute_output_shape",
        "compute_output_spec",
        "count_params",
        "distribute_reduction_method",
        "distribute_strategy",
        "dtype",
        "dtype_policy",
        "evaluate",
        "export",
        "fit",
        "from_config",
        "get_build_config",
        "get_compile_config",
        "get_config",
        "get_layer",
        "get_metrics_result",
        "get_quantization_layer_structure",
        "get_state_tree",
        "get_weights",
        "input",
        "input_dtype",
        "input_spec",
        "jit_compile",
        "layers",
        "load_own_variables",
        "load_weights",
        "loss",
        "losses",
        "make_predict_function",
        "make_test_function",
        "make_train_function",
        "metrics",
        "metrics_names",
        "metrics_variables",
        "non_trainable_variables",
        "non_trainable_weights",
        "output",
        "path",
        "predict",
        "predict_on_batch",
        "predict_step",
        "quantization_mode",
        "quantize",
        "quantized_build",
        "quantized_call",
        "rematerialized_call",
        "reset_metrics",
        "run_eagerly",
        "save",
        "save_own_variables",
        "save_weights",
        "set_state_tree",
        "set_weights",
        "stateless_call",
        "stateless_compute_loss",
        "summary",
        "supports_masking",
        "symbolic_call",
        "test_on_batch",
        "test_step",
        "to_json",
        "train_on_batch",
        "train_step",
        "trainable",
        "trainable_variables",
        "trainable_weights",
        "variable_dtype",
        "variables",
        "weights",
        "name",
        "built",
        "optimizer",
        "submodules",
        "generator",
        "parameter_layers",
    }
)


# Names the generated code uses for its own locals and arguments (in model classes and
# in the Runtime's graph methods, whose arguments are the model's input names).
RUNTIME_LOCALS = frozenset(
    {"self", "training", "target", "lr", "loss", "gradients", "tape", "inputs", "outputs"}
)


class Names:
    """Python identifiers for spec names, unique within one namespace.

    >>> names = Names({"tf"})
    >>> names.claim("x"), names.claim("tf"), names.claim("x")
    ('x', 'tf_2', 'x_2')
    """

    def __init__(self, reserved: set[str] | frozenset[str] = frozenset()):
        self.used: set[str] = set(reserved)

    def claim(self, wanted: str) -> str:
        base = py_identifier(wanted)
        name, k = base, 2
        while name in self.used:
            name, k = f"{base}_{k}", k + 1
        self.used.add(name)
        return name


@dataclass
class Value:
    """A value of the graph as a local variable, in a known layout."""

    local: str
    type: TensorType
    layout: str = FIRST


def spatial(t: TensorType) -> bool:
    """Whether a value has a layout at all: [C, L] or [C, H, W] and beyond."""
    return t.rank >= 2


def uses_dropout(program: Program, model: Model) -> bool:
    return any(
        isinstance(n, Dropout)
        or (isinstance(n, Attention) and n.dropout > 0)
        or (isinstance(n, Call) and uses_dropout(program, program.models[n.model]))
        for n in model.nodes
    )


def callees_first(program: Program, model: Model, out: list[Model]) -> list[Model]:
    """``model`` and every model it calls, each after the models it calls, into ``out``."""
    for node in model.nodes:
        if isinstance(node, Call):
            callees_first(program, program.models[node.model], out)
    if all(m.name != model.name for m in out):
        out.append(model)
    return out


def uses_training(program: Program, model: Model) -> bool:
    """Whether the model behaves differently in training (dropout, batchnorm)."""
    return any(
        isinstance(n, Dropout | BatchNorm)
        or (isinstance(n, Attention) and n.dropout > 0)
        or (isinstance(n, Call) and uses_training(program, program.models[n.model]))
        for n in model.nodes
    )


@dataclass
class ModelEmitter:
    """Emits the class of one model; ``library`` collects the helpers it uses."""

    program: Program
    model: Model
    class_name: str
    class_names: dict[str, str]
    reserved: frozenset[str]
    library: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.locals = Names({*self.reserved, *RUNTIME_LOCALS})
        self.attributes = Names(MODULE_ATTRIBUTES)
        self.values: dict[tuple[str, str], Value] = {}
        self.init_lines: list[str] = []
        self.call_lines: list[str] = []
        self.layers: dict[str, str] = {}  # node name -> attribute, for parameter_layers()

    # -- values and layouts ------------------------------------------------------------

    def define(self, ref: str, t: TensorType, layout: str, local: str | None = None) -> Value:
        value = Value(local or self.locals.claim(ref.replace(":", "_")), t, layout)
        self.values[(ref, value.layout if spatial(t) else FIRST)] = value
        if ref.endswith(":0"):
            self.values[(ref[:-2], value.layout if spatial(t) else FIRST)] = value
        return value

    def input(self, node: Op, k: int = 0, layout: str | None = FIRST) -> Value:
        """Input ``k`` of ``node`` in ``layout`` (None: whichever it has)."""
        return self.fetch(node.inputs[k], layout)

    def fetch(self, ref: str, layout: str | None = FIRST) -> Value:
        """The value ``ref`` in ``layout`` (None: whichever it has), transposed once if
        needed; later uses of that value in that layout reuse the transposed tensor."""
        base = ref[:-2] if ref.endswith(":0") else ref
        t = self.model.value_type(ref)
        if not spatial(t):
            return self.values[(base, FIRST)]
        have = [want for want in (FIRST, LAST) if (base, want) in self.values]
        if layout is None or layout in have:
            return self.values[(base, layout or have[0])]
        other = self.values[(base, have[0])]
        if layout == LAST:
            suffix, helper = ("nlc" if t.rank == 2 else "nhwc"), "to_channels_last"
        else:
            suffix, helper = ("ncl" if t.rank == 2 else "nchw"), "to_channels_first"
        local = self.locals.claim(f"{other.local}_{suffix}")
        self.library.add(helper)
        self.call_lines.append(f"{local} = {helper}({other.local})")
        value = Value(local, t, layout)
        self.values[(base, layout)] = value
        return value

    # -- layers ----------------------------------------------------------------------------

    def layer(self, node: Op, cls: str, **kwargs: object) -> str:
        """Declare a parameter-holding layer for ``node``; returns ``self.<attribute>``."""
        self.library.add(cls)
        attribute = self.attributes.claim(node.name)
        args = ", ".join(f"{k}={py_literal(v)}" for k, v in kwargs.items())
        self.init_lines.append(f"self.{attribute} = {cls}({args})")
        self.layers[node.name] = attribute
        return f"self.{attribute}"

    # -- the class -------------------------------------------------------------------------

    def lower(self) -> None:
        from nnc.backends.tensorflow.ops import LOWERINGS

        params = [self.locals.claim(i.name) for i in self.model.inputs]
        self.params = params
        for decl, local in zip(self.model.inputs, params, strict=True):
            self.define(decl.name, decl.type, FIRST, local)
        for node in self.model.nodes:
            if isinstance(node, Call):
                self._call(node)
                continue
            lowering = LOWERINGS.get(node.op)
            if lowering is None:
                raise UnsupportedOpError(node.op, "tensorflow", node.span)
            expression, layout = lowering(self, node)
            local = self.locals.claim(node.name)
            self.call_lines.append(f"{local} = {expression}")
            self.define(node.name, node.type, layout, local)

    def _call(self, node: Call) -> None:
        callee = self.program.models[node.model]
        attribute = self.attributes.claim(node.name)
        args = []
        if uses_dropout(self.program, callee):
            args.append("generator=self.generator")
        self.init_lines.append(
            f"self.{attribute} = {self.class_names[callee.name]}({', '.join(args)})"
        )
        self.layers[node.name] = attribute
        inputs = [self.input(node, k, FIRST).local for k in range(len(node.inputs))]
        if uses_training(self.program, callee):
            inputs.append("training=training")
        outputs = [
            self.locals.claim(node.name if k == 0 else f"{node.name}_{k}")
            for k in range(len(node.outs))
        ]
        self.call_lines.append(f"{', '.join(outputs)} = self.{attribute}({', '.join(inputs)})")
        for k, (local, t) in enumerate(zip(outputs, node.outs, strict=True)):
            self.define(f"{node.name}:{k}", t, FIRST, local)

    def emit(self, w: CodeWriter) -> None:
        self.lower()
        dropout = uses_dropout(self.program, self.model)
        w.line('@keras.saving.register_keras_serializable(package="nnc")')
        with w.block(f"class {self.class_name}(keras.Model):"):
            takes = ", ".join(f"{i.name} {i.type}" for i in self.model.inputs)
            gives = ", ".join(str(t) for t in self.model.output_types)
            summary = f"The model {self.model.name}: {takes} -> {gives} (per sample)."
            w.docstring(
                f"{summary}\nInputs and outputs are channels-first, as in nnc; inside, "
                "tensors that feed\nconvolutions, pooling and other per-channel ops are "
                "channels-last, the\nlayout TensorFlow's CPU kernels want."
                if self._has_layouts()
                else summary
            )
            w.blank()
            generator = "generator=None, " if dropout else ""
            with w.block(f"def __init__(self, {generator}name={self.model.name!r}, **kwargs):"):
                w.line("super().__init__(name=name, **kwargs)")
                if dropout:
                    w.line("# dropout masks; nnc's runtime passes the one Runtime.seed reseeds")
                    w.line("self.generator = generator or tf.random.Generator.from_seed(0)")
                w.lines_(self.init_lines)
                w.line("self.built = True  # every layer is made above")
            w.blank()
            signature = ", ".join(["self", *self.params, "training=False"])
            with w.block(f"def call({signature}):"):
                outs = [self.fetch(ref, FIRST).local for ref in self.model.outputs]
                w.lines_(self.call_lines)
                w.line(f"return {', '.join(outs)}")
            w.blank()
            with w.block("def _open_name_scope(self):"):
                w.line("# No name scope of the model's name around its ops, as for each Layer:")
                w.line("# Grappler orders some sums by op name, and unscoped they round as before.")
                w.line("return contextlib.nullcontext()")
            w.blank()
            with w.block("def get_config(self):"):
                w.docstring("Its name: the layers are fixed (a loaded model draws new masks).")
                w.line('return {"name": self.name}')
            w.blank()
            with w.block("def parameter_layers(self):"):
                w.docstring(
                    "The layers holding parameters, by node name (canonical names start with it)."
                )
                items = [f"{name!r}: self.{attr}" for name, attr in self.layers.items()]
                one_line = f"return {{{', '.join(items)}}}"
                if len(items) <= 2 and len(one_line) + 4 * (w.level + 1) <= 100:
                    w.line(one_line)
                else:
                    with w.block("return {"):
                        w.lines_([f"{item}," for item in items])
                    w.line("}")

    def _has_layouts(self) -> bool:
        return any(v.layout == LAST for v in self.values.values())


def tensor_axis(axis: int, rank: int, layout: str) -> int:
    """The axis of a batched tensor holding per-sample ``axis`` of a rank-``rank`` value.

    >>> tensor_axis(0, 3, LAST), tensor_axis(-1, 3, LAST), tensor_axis(-1, 3, FIRST)
    (3, 2, 3)
    """
    a = axis % rank
    if layout == LAST and rank >= 2:
        a = rank - 1 if a == 0 else a - 1
    return a + 1
