"""Lowering of the RBM layer: its deterministic up pass ``h = sigmoid(v W + c)``.

Contrastive divergence does not go through these lowerings; it has its own step
(:func:`nnc.train.energy.cd_step`, the loop of :mod:`nnc.train.cd`)."""

from __future__ import annotations

from nnc.backends.numpy.walk import Lowering, NodeContext


def _rbm_forward(c: NodeContext) -> None:
    c.line("# the hidden units' probabilities: weight is [visible, hidden]")
    c.line(f"{c.y} = {c.x()} @ {c.param('weight')} + {c.param('hidden_bias')}")
    c.line(f"{c.y} = {c.kernel('sigmoid')}({c.y})")


def _rbm_backward(c: NodeContext) -> None:
    dz = c.local("dz")
    c.line(f"{dz} = {c.dy} * {c.y} * (1 - {c.y})")
    c.grad_param("weight", f"{c.x()}.T @ {dz}")
    c.grad_param("hidden_bias", f"{dz}.sum(axis=0)")
    c.grad_input(0, f"{dz} @ {c.param('weight')}.T")


LOWERINGS: dict[str, Lowering] = {"rbm": Lowering(_rbm_forward, _rbm_backward)}
