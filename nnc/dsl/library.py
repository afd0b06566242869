"""nnc's standard library of blocks: ``.nn`` files shipped in ``nnc/stdlib/``.

Every block defined there can be used by name in any spec, as if the spec defined it;
a model or block of the same name in the spec replaces the library's (so adding a
block to the library never breaks a spec). The files are parsed once per process, on
first use, with their own file names in the spans, so an error inside a library block
points into the library file.

>>> sorted(library_blocks())[:3]
['causal_layer', 'decoder_layer', 'encoder_layer']
"""

from __future__ import annotations

import functools
from importlib import resources

from nnc.dsl import ast

FILES = ("transformer.nn",)


@functools.cache
def library_blocks() -> dict[str, ast.BlockDef]:
    """Every library block by name."""
    from nnc.dsl.parser import parse_file

    blocks: dict[str, ast.BlockDef] = {}
    for name in FILES:
        text = resources.files("nnc").joinpath("stdlib", name).read_text(encoding="utf-8")
        for item in parse_file(text, f"nnc/stdlib/{name}").items:
            if isinstance(item, ast.BlockDef):
                blocks[item.name] = item
    return blocks
