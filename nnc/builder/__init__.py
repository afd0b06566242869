"""Build networks in Python, without text: the same IR the parser makes.

A :class:`Builder` makes one model; a :class:`ProgramBuilder` makes several models
and their training recipes. Nodes are named by the parser's rules (see
:mod:`nnc.dsl.lower`): ``name=...`` when given, else ``<op>_<k>`` counting per op
from 1; a call of another model is named after it in snake_case (``encoder_1``);
a block instance prefixes the names of its nodes with its own name
(``residual_1_conv2d_1``). Attributes are normalised by the IR classes themselves
(``kernel=3`` is ``(3, 3)`` on a conv2d), and :meth:`Builder.build` returns the
checked program, so a model built here equals the one parsed from the same text.

>>> import nnc
>>> b = nnc.Builder("Xor")
>>> x = b.input("x", [2])
>>> h = b.dense(x, 5, activation="sigmoid")
>>> y = b.dense(h, 1, activation="sigmoid")
>>> b.output(y)
>>> program = b.build()
>>> program == nnc.parse("model Xor { input x: [2]  dense(5) sigmoid  dense(1) sigmoid }")
True

Like a stack of layers in ``.nn`` text, a layer given no input tensor takes the most
recent value, and a model without ``output`` returns it:

>>> b = nnc.Builder("Xor")
>>> _ = b.input("x", [2]); _ = b.dense(5); _ = b.sigmoid(); _ = b.dense(1); _ = b.sigmoid()
>>> b.build() == program
True
"""

from __future__ import annotations

from nnc.builder.binding import make_node
from nnc.builder.model import Builder, ProgramBuilder, Tensor, block

__all__ = ["Builder", "ProgramBuilder", "Tensor", "block", "make_node"]
