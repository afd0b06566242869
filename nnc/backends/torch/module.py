"""Lower one model of a program to an ``nn.Module`` class.

Layers with parameters or state become attributes built in ``__init__`` and named
after their nodes; parameter-free ops are plain tensor code in ``forward``. A model
used as a layer (a Call node) is an attribute holding an instance of its own class.

Variables in ``forward``: a pure chain (one input, one output, each value used once)
threads ``x`` through every line, the way a person writes a sequential network. In a
graph, each chain of single-use values is one variable named after the chain's last
node, so a value used twice keeps its name until its last use.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from nnc.backends.codegen import CodeWriter, py_identifier
from nnc.backends.torch.activations import ACTIVATIONS
from nnc.backends.torch.arith import ARITH
from nnc.backends.torch.layers import LAYERS, Layer, Site
from nnc.backends.torch.layout import LAYOUT
from nnc.backends.torch.linalg import LINALG
from nnc.backends.torch.maths import MATHS
from nnc.backends.torch.positions import POSITIONS
from nnc.backends.torch.resample import RESAMPLE
from nnc.errors import UnsupportedOpError
from nnc.ir.ops import Node
from nnc.ir.ops.graph import Call
from nnc.ir.program import Model, Program

# Attributes of every nn.Module: a node stored under one of these names would
# replace torch's own (``self.training``, ``self.forward``...), so it gets a suffix.
MODULE_ATTRIBUTES = frozenset(
    {
        "T_destination",
        "add_module",
        "apply",
        "bfloat16",
        "buffers",
        "call_super_init",
        "children",
        "compile",
        "cpu",
        "cuda",
        "double",
        "dump_patches",
        "eval",
        "extra_repr",
        "float",
        "forward",
        "get_buffer",
        "get_extra_state",
        "get_parameter",
        "get_submodule",
        "half",
        "ipu",
        "load_state_dict",
        "modules",
        "mtia",
        "named_buffers",
        "named_children",
        "named_modules",
        "named_parameters",
        "parameters",
        "register_backward_hook",
        "register_buffer",
        "register_forward_hook",
        "register_forward_pre_hook",
        "register_full_backward_hook",
        "register_full_backward_pre_hook",
        "register_load_state_dict_post_hook",
        "register_load_state_dict_pre_hook",
        "register_module",
        "register_parameter",
        "register_state_dict_post_hook",
        "register_state_dict_pre_hook",
        "requires_grad_",
        "set_extra_state",
        "set_submodule",
        "share_memory",
        "state_dict",
        "to",
        "to_empty",
        "train",
        "training",
        "type",
        "xpu",
        "zero_grad",
    }
)

# Names a generated module defines or imports at the top level; a variable in
# ``forward`` must not shadow them.
MODULE_NAMES = frozenset(
    {"self", "torch", "nn", "F", "np", "math", "zlib", "len", "super", "x"}
    | {"PARAMETERS", "TORCH_NAMES", "L2_PARAMETERS", "STATE_SLOTS", "INPUT_DTYPES"}
    | {"initial_weights", "compute_loss", "make_optimizer", "learning_rate", "fit", "Runtime"}
)


def has_lowering(op: str) -> bool:
    """Whether ``op`` has a lowering (Call nodes are lowered here, as submodules)."""
    tables = (ARITH, LAYERS, RESAMPLE, ACTIVATIONS, MATHS, LAYOUT, LINALG, POSITIONS)
    return any(op in table for table in tables) or op == "call"


@dataclass
class ModuleClass:
    """One model lowered to an ``nn.Module`` subclass."""

    model: Model
    name: str
    init: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    helpers: set[str] = field(default_factory=set)
    imports: set[str] = field(default_factory=set)
    # canonical parameter name (relative to this model) -> torch's state_dict name
    torch_names: dict[str, str] = field(default_factory=dict)

    def emit(self, w: CodeWriter) -> None:
        m = self.model
        inputs = ", ".join(f"{i.name}: {i.type}" for i in m.inputs)
        outputs = ", ".join(str(t) for t in m.output_types)
        with w.block(f"class {self.name}(nn.Module):"):
            w.docstring(f"Model {m.name}: ({inputs}) -> {outputs}, batch first.")
            w.blank()
            with w.block("def __init__(self):"):
                w.line("super().__init__()")
                w.lines_(self.init)
            w.blank()
            with w.block(f"def forward(self, {', '.join(self.args)}):"):
                w.lines_(self.body)


def lower_models(program: Program, root: Model, taken: set[str]) -> list[ModuleClass]:
    """The root model and every model it calls, callees first; ``taken`` holds the
    top-level names already used in the generated module (updated here)."""
    classes: dict[str, ModuleClass] = {}
    _lower(program, root, classes, taken)
    return list(classes.values())


def _lower(program: Program, model: Model, done: dict[str, ModuleClass], taken: set[str]) -> None:
    for node in model.nodes:
        if isinstance(node, Call) and node.model not in done:
            _lower(program, program.models[node.model], done, taken)
    name = _fresh(py_identifier(model.name, "model name"), taken)
    taken.add(name)
    done[model.name] = _lower_one(program, model, name, done)


def _fresh(name: str, taken: set[str] | frozenset[str], suffix: str = "_") -> str:
    while name in taken:
        name += suffix
    return name


def _lower_one(
    program: Program, model: Model, class_name: str, done: dict[str, ModuleClass]
) -> ModuleClass:
    cls = ModuleClass(model=model, name=class_name)
    variables = _Variables(model)
    cls.args = [variables.value(i.name) for i in model.inputs]
    attributes: set[str] = set()
    for node in model.nodes:
        ins = tuple(model.value_type(ref) for ref in node.inputs)
        xs = tuple(variables.value(ref) for ref in node.inputs)
        attr_name = _fresh(py_identifier(node.name), attributes | MODULE_ATTRIBUTES, "_layer")
        attr = f"self.{attr_name}"
        if isinstance(node, Call):
            callee = done[node.model]
            layer = Layer(module=f"{callee.name}()", forward=f"{attr}({', '.join(xs)})")
            for canonical, torch_name in callee.torch_names.items():
                cls.torch_names[f"{node.name}.{canonical}"] = f"{attr_name}.{torch_name}"
        else:
            lower = (
                ARITH.get(node.op)
                or LAYERS.get(node.op)
                or RESAMPLE.get(node.op)
                or ACTIVATIONS.get(node.op)
                or MATHS.get(node.op)
                or LAYOUT.get(node.op)
                or LINALG.get(node.op)
                or POSITIONS.get(node.op)
            )
            if lower is None:
                raise UnsupportedOpError(node.op, "torch", node.span)
            layer = lower(node, Site(ins=ins, xs=xs, attr=attr, out=node.type))
            for spec in node.param_specs(ins):
                torch_name = layer.renames.get(spec.name, spec.name)
                # "": the attribute is the parameter itself (an nn.Parameter)
                full = f"{attr_name}.{torch_name}" if torch_name else attr_name
                cls.torch_names[f"{node.name}.{spec.name}"] = full
        if layer.module is None and layer.setup:  # a buffer registered by name
            attributes.add(attr_name)
            cls.init.extend(line.format(attr=attr) for line in layer.setup)
        if layer.module is not None:
            attributes.add(attr_name)
            cls.init.append(f"{attr} = {layer.module}")
            cls.init.extend(line.format(attr=attr) for line in layer.setup)
            if getattr(node, "trainable", True) is False:
                cls.init.append(f"{attr}.requires_grad_(False)  # trainable = false")
            elif getattr(node, "bias_trainable", True) is False:
                cls.init.append(f"{attr}.bias.requires_grad_(False)  # bias_trainable = false")
        cls.helpers.update(layer.helpers)
        cls.imports.update(layer.imports)
        if layer.forward is None:
            variables.alias(node.name, node.inputs[0])
            continue
        target = variables.assign(node)
        if layer.comment:
            cls.body.append(f"# {layer.comment}")
        cls.body.append(f"{target} = {layer.forward}")
    results = ", ".join(variables.value(o) for o in model.outputs)
    cls.body.append(f"return {results}")
    return cls


class _Variables:
    """Names of the Python variables holding each value of a model's graph."""

    def __init__(self, model: Model):
        self.model = model
        uses = Counter(ref.partition(":")[0] for n in model.nodes for ref in n.inputs)
        uses.update(o.partition(":")[0] for o in model.outputs)
        self.uses = uses
        self.outputs = {o.partition(":")[0] for o in model.outputs}
        self.multi = {n.name for n in model.nodes if isinstance(n, Call) and len(n.outs) > 1}
        self.nodes = {n.name for n in model.nodes}
        # identity nodes (linear) emit no line: their value is their input's variable
        self.alias_of = {n.name: n.inputs[0] for n in model.nodes if n.op == "linear"}
        self.names: dict[str, str] = {}
        taken: set[str] = set(MODULE_NAMES)
        for i in model.inputs:
            self.names[i.name] = _fresh(py_identifier(i.name), taken - {"x"})
            taken.add(self.names[i.name])
        self.taken = taken
        self.chain = self._pure_chain()

    def _pure_chain(self) -> bool:
        m = self.model
        return (
            len(m.inputs) == 1
            and len(m.outputs) == 1
            and not self.multi
            and all(len(n.inputs) == 1 for n in m.nodes)
            and all(count == 1 for count in self.uses.values())
        )

    def _continues(self, node: Node) -> str | None:
        """The value this node may overwrite: its only input, used by it alone (and,
        through identity nodes, the value that one passes on, likewise)."""
        if len(node.inputs) != 1:
            return None
        ref = node.inputs[0]
        while True:
            if ":" in ref or ref in self.multi or ref in self.outputs or self.uses[ref] != 1:
                return None
            if ref not in self.nodes:
                return None  # a model input keeps its name
            if ref not in self.alias_of:
                return node.inputs[0]
            ref = self.alias_of[ref]

    def value(self, ref: str) -> str:
        base, _, index = ref.partition(":")
        name = self.names[base]
        if base in self.multi:
            return f"{name}[{index or 0}]"
        return name

    def alias(self, node: str, ref: str) -> None:
        """A node that emits no line (an all-zero pad, a reduction over no axis): its
        value is its input's variable, which it must not let a later node overwrite."""
        self.names[node] = self.value(ref)
        self.alias_of[node] = ref

    def assign(self, node: Node) -> str:
        if self.chain:
            name = "x"
        else:
            previous = self._continues(node)
            name = self.names[previous] if previous else self._chain_name(node)
        self.names[node.name] = name
        return name

    def _chain_name(self, head: Node) -> str:
        """A new variable, named after the last node of the chain ``head`` starts."""
        last = head
        by_input = {n.inputs[0]: n for n in self.model.nodes if len(n.inputs) == 1}
        while last.name in by_input and self._continues(by_input[last.name]) == last.name:
            last = by_input[last.name]
        name = _fresh(py_identifier(last.name), self.taken)
        self.taken.add(name)
        return name
