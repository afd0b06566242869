"""Input generators for fuzzing the front end (used by the tests and the soak script).

Two sources: random programs drawn from the grammar's constructs (mostly valid, with
wrong arguments on purpose), and mutations of the examples (token deletion,
duplication and swapping, random characters, truncation, deep nesting, very long
lines, non-UTF-8 bytes, long |> and + chains, models and blocks each using the
previous one once or twice, Unicode line separators, long lines of strings), and
special files in place of a spec (a named pipe, ``/dev/zero``, links to them).
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

from nnc.ir.ops import OPS

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.nn"))
TOKEN = re.compile(
    r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|[A-Za-z_][A-Za-z0-9_]*|[+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\|>|\s+|.',
    re.S,
)

LAYERS = sorted(OPS)
VALUES = [
    "1",
    "2",
    "3",
    "0",
    "-1",
    "0.5",
    "1e-3",
    "true",
    "false",
    "same",
    "valid",
    "[2, 3]",
    "[1, 1, 1, 1]",
    '"x"',
    "relu",
    "he_normal",
    "normal(0, 1)",
    "[]",
    "100000000000",
]
KEYS = [
    "units",
    "kernel",
    "stride",
    "padding",
    "rate",
    "axis",
    "activation",
    "name",
    "init",
    "bias",
    "filters",
    "size",
    "return_sequences",
    "momentum",
    "trainable",
    "shape",
]
SETTINGS = {
    "data": ["xor", "digits", "iris", '"file.csv"', "digits, scale = unit", "nope"],
    "loss": ["mse", "sse", "cross_entropy", "cross_entropy(from_logits = false)", "bce"],
    "optimizer": ["sgd(lr = 0.1)", "adam", "adam(lr = 1e-3, beta1 = 0.5)", "rmsprop(0.01)", "x"],
    "epochs": ["1", "10", "0", "-3", "all"],
    "batch": ["all", "1", "32", "0"],
    "metrics": ["accuracy", "accuracy, top_k(3)", "mae"],
    "seed": ["0", "7", "x"],
    "schedule": ["step(every = 2)", "exponential(0.9)", "constant"],
    "validation": ["0.2", "1.5"],
}


def random_shape(rng: random.Random) -> str:
    dims = [
        str(rng.choice([1, 2, 3, 4, 8, 16])) if rng.random() < 0.8 else rng.choice("thw")
        for _ in range(rng.randint(0, 4))
    ]
    prefix = "int64" if rng.random() < 0.1 else ""
    return f"{prefix}[{', '.join(dims)}]"


def random_call(rng: random.Random, names: list[str]) -> str:
    op = rng.choice(LAYERS + names) if rng.random() < 0.95 else rng.choice(["desne", "Relu", "x"])
    args = []
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
        if rng.random() < 0.6:
            args.append(rng.choice(VALUES))
        else:
            args.append(f"{rng.choice(KEYS)} = {rng.choice(VALUES)}")
    return f"{op}({', '.join(args)})" if args or rng.random() < 0.3 else op


def random_program(rng: random.Random) -> str:
    """A program built from the language's constructs, valid or subtly not."""
    lines: list[str] = []
    models: list[str] = []
    for m in range(rng.randint(1, 3)):
        name = f"M{m}"
        kind = "block" if rng.random() < 0.2 else "model"
        header = f"{kind} {name}" + ("(c)" if kind == "block" and rng.random() < 0.7 else "")
        lines.append(header + " {")
        tensors = []
        for i in range(rng.randint(0, 2) or 1):
            lines.append(f"    input x{i}: {random_shape(rng)}")
            tensors.append(f"x{i}")
        for j in range(rng.randint(0, 6)):
            r = rng.random()
            if r < 0.55:
                lines.append("    " + random_call(rng, models))
            elif r < 0.85:
                src = rng.choice(tensors)
                chain = " |> ".join(random_call(rng, models) for _ in range(rng.randint(1, 3)))
                lines.append(f"    t{j} = {src} |> {chain}")
                tensors.append(f"t{j}")
            else:
                a, b = rng.choice(tensors), rng.choice(tensors)
                lines.append(f"    s{j} = {a} + {b}")
                tensors.append(f"s{j}")
        if rng.random() < 0.3:
            lines.append(f"    output {', '.join(rng.sample(tensors, k=min(len(tensors), 2)))}")
        lines.append("}")
        models.append(name)
    if rng.random() < 0.6:
        lines.append(f"train {rng.choice([*models, 'T'])} {{")
        for key in rng.sample(sorted(SETTINGS), k=rng.randint(1, len(SETTINGS))):
            lines.append(f"    {key} {rng.choice(SETTINGS[key])}")
        lines.append("}")
    return "\n".join(lines) + "\n"


# What other tools count as a line break but nnc does not (a line ends at "\n" only).
LINE_SEPARATORS = ["\u2028", "\u2029", "\x0b", "\x0c", "\x85", "\r"]


def definition_chain(rng: random.Random) -> str:
    """Models (or blocks) each using the previous one, once or twice: a long chain
    must check in time, and a doubling one be refused before it unfolds."""
    kind = rng.choice(["model", "block"])
    calls = rng.choice([1, 2])
    # Doubling ones are far under the 100,000-node limit or far past it, so that a
    # further mutation (a call deleted: half the nodes) does not leave a legitimately
    # huge model, whose expansion takes CPU time in proportion to its 50,000 nodes.
    levels = rng.choice([5, 40, 700, 1200]) if calls == 1 else rng.choice([5, 12, 24, 31])
    if kind == "block":
        levels = min(levels, 40)  # blocks nest 32 deep at most: both sides of the limit
    p = "FuzzM" if kind == "model" else "FuzzB"
    out = [f"{kind} {p}0 {{\n    input x: [4]\n    dense(4)\n}}\n"]
    for i in range(1, levels):
        uses = " ".join([f"{p}{i - 1}"] * calls)
        out.append(f"{kind} {p}{i} {{\n    input x: [4]\n    {uses}\n}}\n")
    if kind == "block":
        out.append(f"model FuzzTop {{\n    input x: [4]\n    {p}{levels - 1}\n}}\n")
    return "".join(out)


MUTATION_KINDS = 13


def mutate(text: str, rng: random.Random, kind: int | None = None) -> str:
    """One random mutation of a source text (of the given ``kind``, else any)."""
    tokens = TOKEN.findall(text)
    kind = rng.randrange(MUTATION_KINDS) if kind is None else kind
    if kind == 0 and tokens:  # delete a token
        del tokens[rng.randrange(len(tokens))]
    elif kind == 1 and tokens:  # duplicate a token
        i = rng.randrange(len(tokens))
        tokens.insert(i, tokens[i])
    elif kind == 2 and len(tokens) > 1:  # swap two tokens
        i, j = rng.randrange(len(tokens)), rng.randrange(len(tokens))
        tokens[i], tokens[j] = tokens[j], tokens[i]
    elif kind == 3:  # random characters somewhere
        pos = rng.randrange(len(text) + 1)
        junk = "".join(
            chr(rng.choice([rng.randrange(32, 127), rng.randrange(0, 0x3000)]))
            for _ in range(rng.randint(1, 8))
        )
        return text[:pos] + junk + text[pos:]
    elif kind == 4:  # truncation
        return text[: rng.randrange(len(text) + 1)]
    elif kind == 5:  # deep nesting
        depth = rng.choice([10, 63, 64, 65, 200, 5000])
        opener, closer = rng.choice([("(", ")"), ("[", "]"), ("relu(", ")")])
        pos = rng.randrange(len(text) + 1)
        return text[:pos] + opener * depth + "x" + closer * depth + text[pos:]
    elif kind == 6:  # a very long line
        unit = rng.choice(["dense(3) ", "x", "# " + "y" * 50, "1", "relu "])
        pos = rng.randrange(len(text) + 1)
        return text[:pos] + unit * rng.choice([100, 10_000]) + text[pos:]
    elif kind == 9:  # a long chain of links in an expression
        link = rng.choice([" |> relu", " + x", " |> dense(2)"])
        pos = rng.randrange(len(text) + 1)
        return text[:pos] + "y = x" + link * rng.choice([50, 600, 3000]) + "\n" + text[pos:]
    elif kind == 10:  # definitions using the previous one, once or twice
        chain = definition_chain(rng)
        return chain + text if rng.random() < 0.5 else text + "\n" + chain
    elif kind == 11:  # line separators, in a comment or anywhere
        sep = rng.choice(LINE_SEPARATORS)
        pos = rng.randrange(len(text) + 1)
        junk = rng.choice([sep, f"# a{sep}b\n", f"{sep} x", sep * 3])
        return text[:pos] + junk + text[pos:]
    elif kind == 12:  # a long line of string tokens
        unit = rng.choice(['"x" ', '"' + "y" * 40 + '", ', '"\\"" '])
        pos = rng.randrange(len(text) + 1)
        return text[:pos] + unit * rng.choice([10, 1000, 5000]) + text[pos:]
    elif kind == 7 and tokens:  # replace a number with an extreme one
        numbers = [i for i, t in enumerate(tokens) if re.fullmatch(r"[+-]?\d+", t)]
        if numbers:
            tokens[rng.choice(numbers)] = rng.choice(["0", "-1", "999999999999", "10" * 40])
    else:  # replace a name with another name from the language
        names = [i for i, t in enumerate(tokens) if re.fullmatch(r"[A-Za-z_]\w*", t)]
        if names:
            tokens[rng.choice(names)] = rng.choice(
                [*LAYERS, "model", "train", "input", "x", "__import__"]
            )
    return "".join(tokens)


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    """Insert bytes that are not valid UTF-8 (0xFF never is)."""
    pos = rng.randrange(len(data) + 1)
    junk = bytes(rng.choice([0xFF, 0xFE, 0xC0, 0x80, 0xED]) for _ in range(rng.randint(0, 3)))
    return data[:pos] + b"\xff" + junk + data[pos:]


# What can stand where a spec file is expected but is not a regular file.
SPECIAL_FILES = ["pipe", "dev-zero", "link-to-dev-zero", "link-to-pipe", "folder", "dangling-link"]


def special_file(variant: str, folder: Path) -> Path:
    """Make one of :data:`SPECIAL_FILES` in ``folder`` (afresh) and return its path."""
    path = folder / f"{variant}.nn"
    if path.is_dir() and not path.is_symlink():
        path.rmdir()
    elif os.path.lexists(path):
        path.unlink()
    if variant == "dev-zero":
        return Path("/dev/zero")
    if variant in ("pipe", "link-to-pipe"):
        pipe = folder / "pipe.fifo"
        if not pipe.exists():
            os.mkfifo(pipe)
        if variant == "pipe":
            return pipe
        path.symlink_to(pipe)
    elif variant == "link-to-dev-zero":
        path.symlink_to("/dev/zero")
    elif variant == "folder":
        path.mkdir()
    else:
        path.symlink_to(folder / "nothing-here.nn")
    return path
