"""Lower one model of a program to an ``nn.Module`` class, and its blocks to classes
of their own.

Layers with parameters or state become attributes built in ``__init__`` and named
after their nodes; parameter-free ops are plain tensor code in ``forward``. A model
used as a layer (a Call node) is an attribute holding an instance of its own class.
A block instance the DSL unfolded (``Model.blocks``) is one too: its nodes become a
class per block (per variant, where instances differ in more than their integer
arguments and input sizes), constructed from those, ``Residual(16)``.

Variables in ``forward`` are named for what they hold (:class:`_Variables`): the
spec's own name for a value, else ``x``; a chain of single-use values threads one
variable, and a name is reused once every value it held is dead.
"""

from __future__ import annotations

import ast as pyast
import keyword
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from nnc.backends.codegen import CodeWriter, py_identifier
from nnc.backends.torch.activations import ACTIVATIONS
from nnc.backends.torch.arith import ARITH
from nnc.backends.torch.layers import LAYERS, Layer, Site
from nnc.backends.torch.layout import LAYOUT
from nnc.backends.torch.linalg import LINALG
from nnc.backends.torch.maths import MATHS
from nnc.backends.torch.positions import POSITIONS
from nnc.backends.torch.resample import RESAMPLE
from nnc.errors import NncError, UnsupportedOpError
from nnc.ir.graph import base_name
from nnc.ir.ops import Node
from nnc.ir.ops.graph import Call
from nnc.ir.program import BlockInstance, Input, Model, Program

# Ops whose output an activation may overwrite in place (``F.relu(x, inplace=True)``,
# as torchvision's networks do): each returns a fresh tensor, and its backward reads
# its inputs and weights, never its output. A ReLU in place saves a tensor's
# allocation and one pass over memory (ResNet-50 inference, batch 8 at 224x224, one
# thread: 0.98x to 1.035x plain torch's CPU time). Not after a normalisation: the
# 4-D/5-D ones return contiguous_norm's view.
IN_PLACE_AFTER = frozenset({"conv1d", "conv2d", "conv3d", "conv2d_transpose", "dense", "add"})

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
    """One model, or the instances of a block that share their code, lowered to an
    ``nn.Module`` subclass."""

    model: Model
    name: str
    init: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    helpers: set[str] = field(default_factory=set)
    imports: set[str] = field(default_factory=set)
    # canonical parameter name (relative to this model) -> torch's state_dict name
    torch_names: dict[str, str] = field(default_factory=dict)
    attributes: set[str] = field(default_factory=set)
    doc: str = ""  # the docstring (default: the model's signature)
    params: list[str] = field(default_factory=list)  # __init__'s parameters (a block's)

    def emit(self, w: CodeWriter) -> None:
        m = self.model
        inputs = ", ".join(f"{i.name}: {i.type}" for i in m.inputs)
        outputs = ", ".join(str(t) for t in m.output_types)
        with w.block(f"class {self.name}(nn.Module):"):
            w.docstring(self.doc or f"Model {m.name}: ({inputs}) -> {outputs}, batch first.")
            w.blank()
            with w.block(f"def __init__({', '.join(['self', *self.params])}):"):
                w.line("super().__init__()")
                w.lines_(self.init)
            w.blank()
            with w.block(f"def forward(self, {', '.join(self.args)}):"):
                w.lines_(self.body)


def lower_models(program: Program, root: Model, taken: set[str]) -> list[ModuleClass]:
    """The root model and every model it calls, callees first; ``taken`` holds the
    top-level names already used in the generated module (updated here). Each block
    the DSL unfolded (``Model.blocks``) is a class of its own, before its user."""
    classes: dict[str, ModuleClass] = {}
    _lower(program, root, classes, taken)
    return list(classes.values())


def _lower(program: Program, model: Model, done: dict[str, ModuleClass], taken: set[str]) -> None:
    for node in model.nodes:
        if isinstance(node, Call) and node.model not in done:
            _lower(program, program.models[node.model], done, taken)
    name = _fresh(py_identifier(model.name, "model name"), taken)
    taken.add(name)
    done[model.name] = _lower_one(model, name, done, taken, _varying(model))


def _fresh(name: str, taken: set[str] | frozenset[str], suffix: str = "_") -> str:
    while name in taken:
        name += suffix
    return name


def _lower_one(
    model: Model,
    class_name: str,
    done: dict[str, ModuleClass],
    taken: set[str],
    varying: dict[str, set[str]],
) -> ModuleClass:
    model, instances = nest_blocks(model)
    # block instance (its node in the nested model) -> (its class's key in done, the
    # expression constructing it)
    blocks = {
        name: _lower_block(info, inner, done, taken, varying)
        for name, (info, inner) in instances.items()
    }
    cls = ModuleClass(model=model, name=class_name)
    variables = _Variables(model, taken)
    cls.args = [variables.value(i.name) for i in model.inputs]
    attributes = cls.attributes
    for index, node in enumerate(model.nodes):
        ins = tuple(model.value_type(ref) for ref in node.inputs)
        xs = tuple(variables.value(ref) for ref in node.inputs)
        attr_name = _fresh(py_identifier(node.name), attributes | MODULE_ATTRIBUTES, "_layer")
        attr = f"self.{attr_name}"
        if isinstance(node, Call):
            if node.name in blocks:  # a block instance: its nodes are <instance>_<node>
                key, module = blocks[node.name]
                callee, prefix = done[key], f"{node.name}_"
            else:  # a model: its parameters are <call>.<parameter>
                callee = done[node.model]
                module, prefix = f"{callee.name}()", f"{node.name}."
            layer = Layer(module=module, forward=f"{attr}({', '.join(xs)})")
            for canonical, torch_name in callee.torch_names.items():
                cls.torch_names[f"{prefix}{canonical}"] = f"{attr_name}.{torch_name}"
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
        if node.op == "relu" and variables.fresh_and_unshared(node):
            layer = replace(layer, forward=f"F.relu({xs[0]}, inplace=True)")
        target = variables.assign(node, index)
        if layer.comment:
            cls.body.append(f"# {layer.comment}")
        cls.body.append(f"{target} = {layer.forward}")
    results = ", ".join(variables.value(o) for o in model.outputs)
    cls.body.append(f"return {results}")
    return cls


# -- blocks as nested modules ----------------------------------------------------------


def nest_blocks(model: Model) -> tuple[Model, dict[str, tuple[BlockInstance, Model]]]:
    """``model`` with each of its top-level block instances (``model.blocks``) as one
    node (a Call whose ``model`` is ``"block <name>"``, named after the instance), and
    each instance as a model of its own: its nodes without the instance's prefix, its
    declared inputs as inputs, its nested instances as its blocks.

    An instance that no longer matches its nodes (a pass rewrote them, or it reads or
    leaks values around its declared inputs and outputs) stays inlined."""
    if not model.blocks:
        return model, {}
    position = {n.name: i for i, n in enumerate(model.nodes)}
    found: dict[int, tuple[BlockInstance, Call, Model, int]] = {}  # first node -> ...
    claimed: set[str] = set()
    for b in model.blocks:
        if b.parent:
            continue
        parts = _instance(model, b, position)
        if parts is None or claimed & set(b.nodes):
            continue
        claimed.update(b.nodes)
        call, inner = parts
        first = min(position[n] for n in b.nodes)
        found[first] = (b, call, inner, first + len(b.nodes))
    if not found:
        return model.model_copy(update={"blocks": ()}), {}
    renamed: dict[str, str] = {}
    for b, call, _, _ in found.values():
        for k, ref in enumerate(b.outputs):
            renamed.setdefault(ref, call.name if k == 0 else f"{call.name}:{k}")
    nodes: list[Node] = []
    instances: dict[str, tuple[BlockInstance, Model]] = {}
    i = 0
    while i < len(model.nodes):
        if i in found:
            b, call, inner, end = found[i]
            inputs = tuple(renamed.get(ref, ref) for ref in call.inputs)
            nodes.append(call.model_copy(update={"inputs": inputs}))
            instances[call.name] = (b, inner)
            i = end
            continue
        node = model.nodes[i]
        if any(ref in renamed for ref in node.inputs):
            inputs = tuple(renamed.get(ref, ref) for ref in node.inputs)
            node = node.model_copy(update={"inputs": inputs})
        nodes.append(node)
        i += 1
    outputs = tuple(renamed.get(o, o) for o in model.outputs)
    nested = model.model_copy(update={"nodes": tuple(nodes), "outputs": outputs, "blocks": ()})
    return nested, instances


def _instance(
    model: Model, b: BlockInstance, position: dict[str, int]
) -> tuple[Call, Model] | None:
    """The node standing for instance ``b`` in ``model``, and the instance as a model;
    None when ``b`` does not match ``model``'s nodes."""
    prefix = b.name + "_"
    inside = set(b.nodes)
    if (
        not b.nodes
        or b.name in position
        or len(inside) != len(b.nodes)
        or any(n not in position or not n.startswith(prefix) or n == prefix for n in inside)
    ):
        return None
    first = min(position[n] for n in inside)
    if max(position[n] for n in inside) != first + len(inside) - 1:
        return None  # not one contiguous run of nodes
    declared = [d for d, _ in b.inputs]
    stripped = {n: n[len(prefix) :] for n in inside}
    if len(set(declared)) != len(declared) or set(declared) & set(stripped.values()):
        return None
    bound: dict[str, str] = {}
    for name, actual in b.inputs:
        if base_name(actual) in inside:
            return None
        bound.setdefault(actual, name)

    def inner_ref(ref: str) -> str | None:
        node, sep, k = ref.partition(":")
        if node in inside:
            return stripped[node] + sep + k
        return bound.get(ref)

    nodes: list[Node] = []
    for node in model.nodes[first : first + len(inside)]:
        refs = [inner_ref(r) for r in node.inputs]
        if any(r is None for r in refs):
            return None
        nodes.append(node.model_copy(update={"name": stripped[node.name], "inputs": tuple(refs)}))
    if not b.outputs or any(base_name(o) not in inside for o in b.outputs):
        return None
    leaving = set(b.outputs)
    outside_refs = [r for n in model.nodes if n.name not in inside for r in n.inputs]
    if any(base_name(r) in inside and r not in leaving for r in (*outside_refs, *model.outputs)):
        return None
    children = []
    for c in model.blocks:
        if c is b or not c.name.startswith(prefix) or not set(c.nodes) <= inside:
            continue
        children.append(
            c.model_copy(
                update={
                    "name": c.name[len(prefix) :],
                    "parent": "" if c.parent == b.name else c.parent[len(prefix) :],
                    "nodes": tuple(stripped[n] for n in c.nodes),
                    "inputs": tuple((d, inner_ref(a) or "") for d, a in c.inputs),
                    "outputs": tuple(inner_ref(o) or "" for o in c.outputs),
                }
            )
        )
    inner = Model(
        name=b.block,
        inputs=tuple(Input(name=d, type=model.value_type(a)) for d, a in b.inputs),
        nodes=tuple(nodes),
        outputs=tuple(inner_ref(o) or "" for o in b.outputs),
        blocks=tuple(children),
    )
    call = Call(
        name=b.name,
        inputs=tuple(a for _, a in b.inputs),
        model=f"block {b.block}",
        outs=tuple(model.value_type(o) for o in b.outputs),
    )
    return call, inner


def _varying(model: Model) -> dict[str, set[str]]:
    """For each block, the symbols of its declared input shapes whose sizes differ
    between its instances in ``model`` (k in stage(c)'s input x: [k, h, w])."""
    sizes: dict[tuple[str, str], set[int | str]] = {}
    for b in model.blocks:
        for declared, (_, actual) in zip(b.shapes, b.inputs, strict=False):
            try:
                shape = model.value_type(actual).shape
            except NncError:
                continue
            for dim, size in zip(declared, shape, strict=False):
                if isinstance(dim, str):
                    sizes.setdefault((b.block, dim), set()).add(size)
    varying: dict[str, set[str]] = {}
    for (block, dim), seen in sizes.items():
        if len(seen) > 1:
            varying.setdefault(block, set()).add(dim)
    return varying


def _lower_block(
    info: BlockInstance,
    inner: Model,
    done: dict[str, ModuleClass],
    taken: set[str],
    varying: dict[str, set[str]],
) -> tuple[str, str]:
    """The class of one block instance (shared with every instance whose code is the
    same once the block's integer arguments are its parameters): its key in ``done``
    and the expression that constructs it, ``Residual(16)``."""
    cls = _lower_one(inner, "", done, taken, varying)
    args = dict(zip(info.params, info.args, strict=True))
    values: dict[int, str] = {}  # a number -> the (first) parameter it is the value of
    for param, text in args.items():
        number = _integer(text)
        if number is not None and number >= 2:
            values.setdefault(number, param)
    # The symbols of the declared input shapes (k in input x: [k, h, w]) whose sizes
    # differ between instances are parameters too, given by keyword: Stage(8, k=1).
    symbols: dict[str, int] = {}
    for declared, actual in zip(info.shapes, inner.inputs, strict=False):
        for dim, size in zip(declared, actual.type.shape, strict=False):
            if (
                isinstance(dim, str)
                and isinstance(size, int)
                and dim not in args
                and dim in varying.get(info.block, ())
            ):
                symbols.setdefault(dim, size)
    for symbol, size in symbols.items():
        values.setdefault(size, symbol)
    names = (*info.params, *symbols)
    local = _locals(names, cls.init)
    init, used = _parameterise(cls.init, values, lambda p: local[p], ())
    stored = {p: f"self.{p}" for p in names if p not in cls.attributes | MODULE_ATTRIBUTES}
    stored_values = {v: p for v, p in values.items() if p in stored}
    body, read = _parameterise(cls.body, stored_values, lambda p: stored[p], _SHAPE_CALLS)
    params = [p for p in names if p in used | read]
    init = [f"self.{p} = {local[p]}" for p in names if p in read] + init
    key = "block " + repr((info.block, params, init, body, cls.args))
    if key not in done:
        base = "".join(part[:1].upper() + part[1:] for part in info.block.split("_") if part)
        name, k = base, 1
        while name in taken:
            k += 1
            name = f"{base}{k}"
        taken.add(name)
        cls.name, cls.init, cls.body = name, init, body
        cls.params = [local[p] for p in params]
        cls.doc = f"Block {info.block}({', '.join(info.params)}) of the spec, batch first."
        done[key] = cls
    given = [args[p] for p in params if p in args]
    given += [f"{local[p]}={symbols[p]}" for p in params if p in symbols]
    return key, f"{done[key].name}({', '.join(given)})"


# Calls in forward whose integer arguments may be a block's parameters (sizes).
_SHAPE_CALLS = ("reshape", "view")


def _integer(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _locals(params: tuple[str, ...], lines: list[str]) -> dict[str, str]:
    """Each block parameter's name in ``__init__``: its own, unless a name the lines
    read (``nn``, a helper) or ``self`` would be shadowed."""
    read = {"self", "super"}
    for line in lines:
        try:
            read.update(n.id for n in pyast.walk(pyast.parse(line)) if isinstance(n, pyast.Name))
        except SyntaxError:
            continue
    out: dict[str, str] = {}
    for p in params:
        name = p
        while name in read or keyword.iskeyword(name) or name in out.values():
            name += "_"
        out[p] = name
    return out


def _parameterise(
    lines: list[str],
    values: dict[int, str],
    spell: Callable[[str], str],
    calls: tuple[str, ...],
) -> tuple[list[str], set[str]]:
    """``lines`` with each positional integer argument of a call (of a method in
    ``calls``, when given) that equals a parameter's value written as ``spell(param)``;
    and the parameters written so."""
    if not values:
        return list(lines), set()
    out: list[str] = []
    used: set[str] = set()
    for line in lines:
        if not line.isascii():
            out.append(line)
            continue
        try:
            tree = pyast.parse(line)
        except SyntaxError:
            out.append(line)
            continue
        spots: list[tuple[int, int, str]] = []
        for call in pyast.walk(tree):
            if not isinstance(call, pyast.Call):
                continue
            if calls and not (isinstance(call.func, pyast.Attribute) and call.func.attr in calls):
                continue
            for arg in (
                item
                for positional in call.args
                for item in (
                    positional.elts if isinstance(positional, pyast.Tuple) else (positional,)
                )
            ):
                if (
                    isinstance(arg, pyast.Constant)
                    and type(arg.value) is int
                    and arg.value in values
                    and arg.end_col_offset is not None
                ):
                    spots.append((arg.col_offset, arg.end_col_offset, values[arg.value]))
        for start, end, param in sorted(spots, reverse=True):
            line = line[:start] + spell(param) + line[end:]
            used.add(param)
        out.append(line)
    return out, used


# -- variables ---------------------------------------------------------------------------

_NUMBERED = re.compile(r"(.+)_(\d+)")
# What the DSL names a node it is given no name for, besides its op: <base>_<k>.
_AUTO_BASES = frozenset({"split", "neg", "matmul", "add", "constant", "layer"})


def _snake_case(name: str) -> str:
    """``DigitsCNN`` -> ``digits_cnn`` (the DSL's name for a call of a model)."""
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()


class _Variables:
    """Names of the Python variables holding each value of a model's graph.

    A variable is named for what it holds: the spec's own name for the value (``y``
    for ``y = x |> ...``, and again for its rebinding ``y_2``), else ``x``. Each chain
    of single-use values threads one variable through its lines, switching to the next
    name the spec gives along it. A name is reused once every value it held is dead
    (``x = x + y``); otherwise a value takes ``<name>_2``, ``<name>_3``...
    """

    def __init__(self, model: Model, reserved: set[str]):
        self.model = model
        uses = Counter(ref.partition(":")[0] for n in model.nodes for ref in n.inputs)
        uses.update(o.partition(":")[0] for o in model.outputs)
        self.uses = uses
        self.outputs = {o.partition(":")[0] for o in model.outputs}
        self.multi = {n.name for n in model.nodes if isinstance(n, Call) and len(n.outs) > 1}
        self.nodes = {n.name: n for n in model.nodes}
        # identity nodes (linear) emit no line: their value is their input's variable
        self.alias_of = {n.name: n.inputs[0] for n in model.nodes if n.op == "linear"}
        self.reserved = (set(MODULE_NAMES) | reserved) - {"x"}
        self.last_use: dict[str, int] = {}
        for index, n in enumerate(model.nodes):
            for ref in n.inputs:
                self.last_use[base_name(ref)] = index
        for o in model.outputs:
            self.last_use[base_name(o)] = len(model.nodes)
        self.by_input = {n.inputs[0]: n for n in model.nodes if len(n.inputs) == 1}
        self.names: dict[str, str] = {}
        self.variable: dict[str, str] = {}  # value -> the variable holding it
        self.holders: dict[str, list[str]] = {}  # variable -> the values it held
        for i in model.inputs:
            name = _fresh(py_identifier(i.name), self.reserved | set(self.holders))
            self._bind(i.name, name, name)

    def _bind(self, value: str, name: str, variable: str) -> None:
        self.names[value] = name
        self.variable[value] = variable
        self.holders.setdefault(variable, []).append(value)

    def _free(self, name: str, index: int) -> bool:
        """Whether node ``index`` may assign ``name``: no value it holds is read later."""
        return name not in self.reserved and all(
            self.last_use.get(v, -1) <= index for v in self.holders.get(name, ())
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

    def fresh_and_unshared(self, node: Node) -> bool:
        """Whether ``node`` may overwrite its input in place: the input is read by this
        node alone, and it is a fresh tensor (not a view) whose producer's backward
        does not read it (a convolution's or dense layer's output, a sum)."""
        previous = self._continues(node)
        if previous is None:
            return False
        while previous in self.alias_of:
            previous = self.alias_of[previous]
        producer = self.nodes.get(previous)
        return producer is not None and producer.op in IN_PLACE_AFTER

    def _spec_name(self, node: Node) -> str | None:
        """The name the spec gives this node's value (None: the DSL named it)."""
        name = node.name
        numbered = _NUMBERED.fullmatch(name)
        if numbered is not None:
            base, k = numbered.group(1), int(numbered.group(2))
            auto = _AUTO_BASES | {node.op}
            if isinstance(node, Call):
                auto |= {_snake_case(node.model), node.model.rpartition(" ")[2]}
            if base in auto:
                return None
            if k >= 2:
                name = base  # a rebinding: y = y |> ... names the node y_2
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("__"):
            return None
        return name

    def _segment_name(self, head: Node) -> str:
        """The name of the stretch of a chain that ``head`` starts: the spec's name for
        the first value along it that has one, else ``x``."""
        last = head
        while True:
            name = self._spec_name(last)
            if name is not None:
                return name
            after = self.by_input.get(last.name)
            if after is None or self._continues(after) != last.name:
                return "x"
            last = after

    def value(self, ref: str) -> str:
        base, _, index = ref.partition(":")
        name = self.names[base]
        if base in self.multi:
            return f"{name}[{index or 0}]"
        return name

    def alias(self, node: str, ref: str) -> None:
        """A node that emits no line (an all-zero pad, a reduction over no axis): its
        value is its input's variable, which it must not let a later node overwrite."""
        self._bind(node, self.value(ref), self.variable[base_name(ref)])
        self.alias_of[node] = ref

    def assign(self, node: Node, index: int) -> str:
        """The variable node ``index`` (of the model's nodes) assigns."""
        previous = self._continues(node)
        if previous is not None:
            variable = self.variable[previous]
            before = self.nodes[previous]
            if self._spec_name(before) is None:  # the same stretch: the same variable
                self._bind(node.name, variable, variable)
                return variable
            # The value before it has a name of its own: a new name when the spec
            # gives one further on (or, but past an activation or dropout, x).
            wanted = self._segment_name(node)
            keep = wanted == "x" and (node.op in ACTIVATIONS or node.op == "dropout")
            name = wanted if not keep and self._free(wanted, index) else variable
        else:
            wanted = self._segment_name(node)
            name, k = wanted, 1
            while not self._free(name, index):
                k += 1
                name = f"{wanted}_{k}"
        self._bind(node.name, name, name)
        return name
