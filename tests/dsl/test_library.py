"""The standard library's Transformer blocks (nnc/stdlib/transformer.nn), used by name:
parameter counts equal torch's nn.TransformerEncoderLayer / nn.TransformerDecoderLayer
and nn.MultiheadAttention (counted by torch here), with and without bias, post- and
pre-norm; the same shapes tensor by tensor; the same outputs as torch's layers given
nnc's weights; every backend and 20 training steps against the reference; a spec's
own block of the same name wins; errors point at the call."""

from __future__ import annotations

import numpy as np
import pytest

import nnc
from nnc.dsl.library import library_blocks
from nnc.errors import NncError
from nnc.ir.weights import init_weights
from nnc.verify import verify
from tests.conftest import require
from tests.equivalence.matrix import INFERENCE, TRAINING, explain, need

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SETTINGS = [(16, 4, 32), (12, 3, 20)]  # d_model, nhead, dim_feedforward


def encoder(d: int, heads: int, ff: int, bias: bool, pre: bool, rate: float = 0.1) -> str:
    block = "pre_norm_encoder_layer" if pre else "encoder_layer"
    flag = str(bias).lower()
    return (
        f"model E {{\n    input x: [t, {d}]\n    {block}({d}, {heads}, {ff}, {rate}, {flag})\n}}\n"
    )


def decoder(d: int, heads: int, ff: int, bias: bool, pre: bool, rate: float = 0.1) -> str:
    block = "pre_norm_decoder_layer" if pre else "decoder_layer"
    flag = str(bias).lower()
    return (
        f"model D {{\n    input x: [t, {d}]\n    input memory: [s, {d}]\n"
        f"    output {block}(x, memory, {d}, {heads}, {ff}, {rate}, {flag}, name = layer)\n}}\n"
    )


def torch_count(module: object) -> int:
    return sum(p.numel() for p in module.parameters())  # type: ignore[attr-defined]


def test_the_library_ships_the_four_layers() -> None:
    assert {
        "encoder_layer",
        "pre_norm_encoder_layer",
        "decoder_layer",
        "pre_norm_decoder_layer",
    } <= set(library_blocks())


@pytest.mark.parametrize("d, heads, ff", SETTINGS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("pre", [False, True], ids=["post-norm", "pre-norm"])
def test_parameter_counts_equal_torch(d: int, heads: int, ff: int, bias: bool, pre: bool) -> None:
    require("torch")
    import torch

    options = {"bias": bias, "norm_first": pre, "batch_first": True}
    torch_encoder = torch.nn.TransformerEncoderLayer(d, heads, ff, **options)
    torch_decoder = torch.nn.TransformerDecoderLayer(d, heads, ff, **options)
    ours_encoder = nnc.count_params(nnc.parse(encoder(d, heads, ff, bias, pre)), "E")
    ours_decoder = nnc.count_params(nnc.parse(decoder(d, heads, ff, bias, pre)), "D")
    print(
        f"d={d} heads={heads} ff={ff} bias={bias} {'pre' if pre else 'post'}: encoder "
        f"nnc {ours_encoder} torch {torch_count(torch_encoder)}, decoder nnc {ours_decoder} "
        f"torch {torch_count(torch_decoder)}"
    )
    assert ours_encoder == torch_count(torch_encoder)
    assert ours_decoder == torch_count(torch_decoder)


@pytest.mark.parametrize("bias", [True, False])
def test_attention_count_equals_multihead_attention(bias: bool) -> None:
    require("torch")
    import torch

    program = nnc.parse(
        f"model A {{\n    input x: [t, 16]\n    attention(4, bias = {str(bias).lower()})\n}}\n"
    )
    torch_attention = torch.nn.MultiheadAttention(16, 4, bias=bias)
    ours, theirs = nnc.count_params(program, "A"), torch_count(torch_attention)
    print(f"attention bias={bias}: nnc {ours} torch {theirs}")
    assert ours == theirs


def _torch_state(weights: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """nnc's weights of one library layer under torch's names (q, k, v packed)."""
    own = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
    state: dict[str, np.ndarray] = {}
    for ours, theirs in (("self_attention", "self_attn"), ("cross_attention", "multihead_attn")):
        for kind in ("weight", "bias"):
            parts = [own.pop(f"{ours}.{p}.{kind}", None) for p in ("query", "key", "value")]
            if parts[0] is not None:
                state[f"{theirs}.in_proj_{kind}"] = np.concatenate(parts)
            out = own.pop(f"{ours}.output.{kind}", None)
            if out is not None:
                state[f"{theirs}.out_proj.{kind}"] = out
    state.update(own)  # linear1, linear2, norm1..3 carry torch's names
    return state


@pytest.mark.parametrize("pre", [False, True], ids=["post-norm", "pre-norm"])
@pytest.mark.parametrize("bias", [True, False])
def test_outputs_equal_torch_layers_given_nncs_weights(pre: bool, bias: bool) -> None:
    require("torch")
    import torch

    from nnc.backends import get_backend

    rng = np.random.default_rng(0)
    options = {"bias": bias, "norm_first": pre, "batch_first": True, "dropout": 0.0}
    encoder_prefix = ("pre_norm_" if pre else "") + "encoder_layer_1_"
    cases = [
        (encoder(16, 4, 32, bias, pre, 0.0), "E", torch.nn.TransformerEncoderLayer, encoder_prefix),
        (decoder(16, 4, 32, bias, pre, 0.0), "D", torch.nn.TransformerDecoderLayer, "layer_"),
    ]
    for source, name, layer_class, prefix in cases:
        program = nnc.parse(source)
        weights = {
            k: (v + rng.normal(scale=0.1, size=v.shape)).astype(np.float32)
            for k, v in init_weights(program, name, seed=1).items()
        }
        layer = layer_class(16, 4, 32, **options).double().eval()
        state = {
            k: torch.tensor(v, dtype=torch.float64)
            for k, v in _torch_state(weights, prefix).items()
        }
        layer.load_state_dict(state, strict=True)
        x = rng.normal(size=(2, 5, 16)).astype(np.float32)
        memory = rng.normal(size=(2, 7, 16)).astype(np.float32)
        with torch.no_grad():
            if name == "E":
                want = layer(torch.tensor(x, dtype=torch.float64)).numpy()
                got = get_backend("numpy").build(program, name, weights).forward(x)
            else:
                mask = torch.nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.float64)
                want = layer(
                    torch.tensor(x, dtype=torch.float64),
                    torch.tensor(memory, dtype=torch.float64),
                    tgt_mask=mask,
                ).numpy()
                got = get_backend("numpy").build(program, name, weights).forward(x, memory)
        deviation = float(np.abs(np.asarray(got, np.float64) - want).max())
        print(f"{name} {'pre' if pre else 'post'} bias={bias}: max |nnc - torch| {deviation:.2e}")
        assert deviation < 2e-5


@pytest.mark.parametrize("bias", [True, False])
def test_causal_layer_is_torchs_pre_norm_layer_with_a_causal_mask(bias: bool) -> None:
    """causal_layer (a GPT block): torch's TransformerEncoderLayer(norm_first=True)
    called with the square subsequent mask; the same count and, given nnc's weights,
    the same outputs in float64."""
    require("torch")
    import torch

    from nnc.backends import get_backend

    flag = str(bias).lower()
    program = nnc.parse(
        "model C {\n    input x: [t, 16]\n"
        f"    causal_layer(16, 4, 32, 0.0, {flag}, name = g)\n}}\n"
    )
    layer = torch.nn.TransformerEncoderLayer(
        16, 4, 32, dropout=0.0, bias=bias, norm_first=True, batch_first=True
    )
    assert nnc.count_params(program, "C") == torch_count(layer)
    rng = np.random.default_rng(2)
    weights = {
        k: (v + rng.normal(scale=0.1, size=v.shape)).astype(np.float32)
        for k, v in init_weights(program, "C", seed=1).items()
    }
    layer = layer.double().eval()
    state = {
        k: torch.tensor(v, dtype=torch.float64) for k, v in _torch_state(weights, "g_").items()
    }
    layer.load_state_dict(state, strict=True)
    x = rng.normal(size=(2, 6, 16)).astype(np.float32)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(6, dtype=torch.float64)
    with torch.no_grad():
        want = layer(torch.tensor(x, dtype=torch.float64), src_mask=mask, is_causal=True).numpy()
    got = get_backend("numpy").build(program, "C", weights).forward(x)
    deviation = float(np.abs(np.asarray(got, np.float64) - want).max())
    print(f"causal_layer bias={bias}: max |nnc - torch| {deviation:.2e}")
    assert deviation < 2e-5


STACK = """
model Stack {
    input x: [t, 4]
    h = x |> encoder_layer(4, 2, 6, 0.0, true)
    output decoder_layer(x, h, 4, 2, 6, 0.0, false) |> dense(3)
}

train Stack {
    data      "seq.npz"
    loss      cross_entropy
    optimizer adam(lr = 0.01)
}
"""


# TensorFlow is left out to keep the suite fast (its tracing costs ~40 s here); every
# op of these blocks is in the registry matrix on TensorFlow too.
@pytest.mark.parametrize("backend", [b for b in TRAINING + INFERENCE if b != "tensorflow"])
def test_a_stack_of_library_layers_matches_the_reference(backend: str) -> None:
    need(backend)
    report = verify(nnc.parse(STACK), backends=[backend], steps=20, transfer=False)
    assert report.equivalent, explain(report)


def test_a_spec_block_of_the_same_name_replaces_the_librarys() -> None:
    program = nnc.parse(
        "block encoder_layer(d) {\n    input x: [t, d]\n    output dense(x, d)\n}\n"
        "model M {\n    input x: [t, 4]\n    encoder_layer(4)\n}\n"
    )
    assert [n.op for n in program.models["M"].nodes] == ["dense"]


def test_a_misused_library_block_is_reported_with_both_shapes() -> None:
    """d = 16 on a [t, 8] input: the first node that meets both widths fails, showing
    both shapes, located at the block's call in the spec (issue 26: a span in the
    library file lay outside the spec and named none of its lines); a wrong argument
    count fails at the call too."""
    source = "model M {\n    input x: [t, 8]\n    encoder_layer(16, 4, 32, 0.1, true)\n}\n"
    with pytest.raises(NncError, match=r"<string>:3:5: .*\[t, 8\] with \[t, 16\]"):
        nnc.parse(source)
    with pytest.raises(
        NncError,
        match=r"<string>:3:5: block .encoder_layer. is missing argument\(s\): ff, rate, bias",
    ):
        nnc.parse("model M {\n    input x: [t, 8]\n    encoder_layer(8, 2)\n}\n")


def test_no_library_block_takes_an_op_name() -> None:
    """The lowering parses the library only for a file that uses a name neither its
    own nor an op's; a library block named like an op would be missed."""
    from nnc.ir.ops import OPS

    assert not set(library_blocks()) & set(OPS)


def test_the_library_is_parsed_only_for_a_file_that_may_use_it() -> None:
    from nnc.dsl.lower import lower
    from nnc.dsl.parser import parse_file

    library_blocks.cache_clear()
    lower(parse_file("model M { input x: [2]  dense(3) relu }"))
    assert library_blocks.cache_info().currsize == 0
    program = lower(parse_file(encoder(16, 4, 32, True, False))).program
    assert library_blocks.cache_info().currsize == 1
    assert [node.op for node in program.models["E"].nodes][:4] == [
        "attention",
        "dropout",
        "add",
        "layernorm",
    ]
