"""Memory limits (issue 26): the budget covers the peak of a command, not the bare
parameters, initial weights cost no float64 copy, and running out of memory is a
typed error.

Every size here is small (a few MiB under a small ``NNC_MEMORY_BUDGET``) or is only
checked, never allocated.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc.cli.main import main
from nnc.errors import NncError, ResourceError
from nnc.ir.initializers import DRAW_CHUNK, HeNormal, Uniform
from nnc.ir.passes.resources import parse_size
from nnc.ir.weights import init_weights
from tests.conftest import nnc_argv, nnc_env

MIB = 1024**2


def spec(units: int, optimizer: str, inputs: int = 64) -> str:
    return (
        f"model M {{\n    input x: [{inputs}]\n    dense({units})\n    dense(10)\n}}\n"
        f'train M {{\n    data "d.npz"\n    loss cross_entropy\n    optimizer {optimizer}\n'
        "    epochs 1\n    batch 16\n}\n"
    )


def nnc_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """The CLI in this process (a subprocess costs seconds of imports)."""
    code = main(list(args))
    return code, capsys.readouterr().err


def test_the_issue_26_dense_model_is_refused_by_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`input [64]; dense(20000000); dense(10)` with Adam: 5.6 GiB of parameters
    passed the 16 GiB budget, then train, verify, compile and export ran out of memory.
    Only checked here: nothing is allocated."""
    path = tmp_path / "huge.nn"
    path.write_text(spec(20_000_000, "adam"))
    code, err = nnc_cli(capsys, "check", str(path))
    assert code == 1, err
    # (64 + 1) * 20e6 + (20e6 + 1) * 10 = 1,500,000,010 values; 8 copies in the
    # ONNX export are 48 GB = 44.7 GiB
    assert (
        "huge.nn:3:5: error: model 'M' needs 44.7 GiB at its peak: the ONNX export holds 8 "
        "copies of its 1,500,000,010 float32 parameters (5.6 GiB; the largest, dense "
        "'dense_1', has 1,300,000,000); the memory budget is 16.0 GiB" in err
    )


def test_training_peak_depends_on_the_optimizer(monkeypatch: pytest.MonkeyPatch) -> None:
    # 64 * 4000 + 4000 + 4000 * 10 + 10 = 300,010 values, 1.14 MiB in float32
    monkeypatch.setenv("NNC_MEMORY_BUDGET", "12MiB")
    nnc.parse(spec(4000, "sgd(lr = 0.1)"), "m.nn")  # 9 copies: 10.3 MiB
    for optimizer, copies in [("sgd(lr = 0.1, momentum = 0.9)", 13), ("adam", 17)]:
        with pytest.raises(ResourceError) as info:
            nnc.parse(spec(4000, optimizer), "m.nn")
        size = 300_010 * 4 * copies / MIB
        kind = optimizer.split("(")[0]
        assert info.value.message.startswith(
            f"model 'M' needs {size:.1f} MiB at its peak: training with {kind} holds "
            f"{copies} copies of its 300,010 float32 parameters"
        ), info.value.message
        span = info.value.span
        assert span is not None and (span.line, span.col) == (3, 5)  # dense(4000)


def test_nnc_check_applies_the_recipe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`nnc check` checks each model without its recipe first; the recipe's batch
    size and optimizer must count too (its activations at the batch were missed)."""
    path = tmp_path / "m.nn"
    path.write_text(spec(4000, "adam"))
    code, err = nnc_cli(capsys, "check", "--memory-budget", "12MiB", str(path))
    assert code == 1
    assert "m.nn:3:5: error: model 'M' needs 19.5 MiB at its peak: training with adam" in err
    assert nnc_cli(capsys, "check", "--memory-budget", "20MiB", str(path))[0] == 0


def test_a_huge_convolution_is_refused_before_the_onnx_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`conv2d(100000, 99)` over [1, 128, 128] ran 28 s into the ONNX export before
    running out of memory; only checked here."""
    path = tmp_path / "conv.nn"
    path.write_text("model C {\n    input x: [1, 128, 128]\n    conv2d(100000, 99)\n}\n")
    start = time.monotonic()
    out = str(tmp_path / "c.onnx")
    code, err = nnc_cli(capsys, "compile", str(path), "--backend", "onnx", "-o", out)
    assert code == 1, err
    assert time.monotonic() - start < 5
    # 100000 * 99 * 99 + 100000 = 980,200,000 values, 8 copies: 31.4 GB = 29.2 GiB
    assert "conv.nn:3:5: error: model 'C' needs 29.2 GiB at its peak" in err
    assert not Path(out).exists()


def test_the_estimate_covers_the_training_peak(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """NumPy training with Adam, measured with tracemalloc (every NumPy array): the
    peak (a checkpoint being written) lies under the 17 copies the check counts."""
    path = tmp_path / "m.nn"
    path.write_text(spec(30_000, "adam"))
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "d.npz",
        x=rng.random((32, 64), dtype=np.float32),
        y=rng.integers(0, 10, 32),
    )
    values = 64 * 30_000 + 30_000 + 300_010  # 2,250,010, 8.6 MiB
    monkeypatch.chdir(tmp_path)
    # once untraced, a smaller model, so that what is imported and generated on the
    # first run is not counted
    (tmp_path / "tiny.nn").write_text(spec(10, "adam"))
    assert main(["train", "tiny.nn", "--backend", "numpy", "--out", "tiny"]) == 0
    monkeypatch.setenv("NNC_MEMORY_BUDGET", str(values * 4 * 17))  # exactly the estimate
    tracemalloc.start()
    try:
        code = main(["train", str(path), "--backend", "numpy", "--out", str(tmp_path / "run")])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    capsys.readouterr()
    assert code == 0
    copies = peak / (values * 4)
    # the peak holds at least weights, gradients and both moments (the measure sees
    # the arrays), and includes everything else the process allocated meanwhile
    assert 4 < copies <= 17, copies


def test_initial_weights_are_drawn_in_float32_chunks() -> None:
    """A float64 draw of a weight cost twice its float32 size on top of it."""
    program = nnc.parse("model M {\n    input x: [999]\n    dense(8192)\n}\n")  # 8.2M values
    tracemalloc.start()
    try:
        weights = init_weights(program, "M", seed=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    size = weights["dense_1.weight"].nbytes + weights["dense_1.bias"].nbytes
    assert size == 8192 * 1000 * 4
    # the float32 weights and a few float64 chunks (a draw and its scaled copy);
    # a whole float64 draw alone would be 2 * size
    assert peak < size + 3 * DRAW_CHUNK * 8, (peak / size, size)


@pytest.mark.parametrize("init", [HeNormal(), Uniform(lo=-0.3, hi=0.2)])
def test_chunked_draws_equal_one_float64_draw(init: HeNormal | Uniform) -> None:
    shape = (3, DRAW_CHUNK // 2 + 7)  # more than one chunk, not a multiple of it
    whole = init.sample(shape, 10, 20, np.random.default_rng(5)).astype(np.float32)
    drawn = init.draw(shape, 10, 20, np.random.default_rng(5))
    assert drawn.dtype == np.float32 and drawn.shape == shape
    assert np.array_equal(whole, drawn)


def test_a_memory_error_is_a_typed_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def exhausted(args: object) -> int:
        raise MemoryError("Unable to allocate 9.54 GiB for an array with shape (1280000000,)")

    import nnc.cli.check

    monkeypatch.setattr(nnc.cli.check, "run", exhausted)
    code = main(["check", "examples/xor.nn"])
    err = capsys.readouterr().err
    assert code == 1, err  # 3, "internal error: MemoryError", before
    assert err.startswith(
        "error: out of memory during 'nnc check': Unable to allocate 9.54 GiB for an array "
        "with shape (1280000000,). The machine has less free memory than this command needs"
    ), err


def _limit_address_space() -> None:
    limit = parse_size("1GiB")
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS is Linux's")
def test_running_out_of_memory_in_training_exits_1(tmp_path: Path) -> None:
    """A model the budget lets through (a budget larger than the machine) on a machine
    with less memory: a real MemoryError, under a 1 GiB address-space limit."""
    path = tmp_path / "m.nn"
    path.write_text(spec(1_500_000, "adam"))  # 429 MiB of parameters, 17 copies
    np.savez(tmp_path / "d.npz", x=np.zeros((32, 64), np.float32), y=np.zeros(32, np.int64))
    env = {**nnc_env(), "NNC_MEMORY_BUDGET": "64GiB", "OPENBLAS_NUM_THREADS": "1"}
    result = subprocess.run(
        [*nnc_argv("train", str(path), "--backend", "numpy", "--out", str(tmp_path / "r"))],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        preexec_fn=_limit_address_space,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "error: out of memory during 'nnc train': Unable to allocate" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_error_inside_a_library_block_is_located_at_its_call() -> None:
    """A soak finding: errors inside nnc's standard library blocks (issue 21's
    Transformer blocks) were located in nnc/stdlib/transformer.nn, outside the spec,
    with no line of the spec named."""
    head = (
        "model R {\n    input t: int64[8]\n    x = t |> embedding(10, 32)\n"
        "    m = x |> encoder_layer(32, 4, 64, 0.0, true)\n"
    )
    for args, message in [
        ("32, 0, 64", "attention: argument 'heads' should be greater than 0"),
        ("32, 5, 64", "the query width 32 is not divisible by heads = 5"),
        ("32, 4, 999999999999", "dense 'dec_linear1' needs 120.1 TiB of parameters"),
    ]:
        text = head + f"    output decoder_layer(x, m, {args}, 0.0, true, name = dec)\n}}\n"
        with pytest.raises(NncError) as info:
            nnc.parse(text, "r.nn")
        assert message in info.value.message
        span = info.value.span
        assert span is not None and (span.file, span.line, span.col) == ("r.nn", 5, 12)


def _nested_blocks(levels: int) -> str:
    out = ["block B0 {\n    input x: [4]\n    dense(4)\n}\n"]
    out += [f"block B{i} {{\n    input x: [4]\n    B{i - 1}\n}}\n" for i in range(1, levels)]
    return "".join(out) + f"model M {{\n    input x: [4]\n    B{levels - 1}\n}}\n"


BODY = "model M {\n    input x: [4]\n    %s\n}\n"


@pytest.mark.parametrize(
    ("text", "error", "where", "message"),
    [
        (
            BODY % "repeat 10001 { relu }",
            "ArgumentError",
            (3, 12),
            "repeat takes a count from 0 to 10000. Received: 10001",
        ),
        (
            BODY % ("dense(" + "1" * 31 + ")"),
            "ResourceError",
            (3, 11),
            "integer literal with 31 digits; at most 30",
        ),
        (
            BODY % ("y" * 129 + " = relu(x)"),
            "NameResolutionError",
            (3, 5),
            "name is longer than 128 characters",
        ),
        (_nested_blocks(33), "ResourceError", (7, 5), "blocks nested deeper than 32 levels"),
    ],
    ids=["repeat-count", "integer-digits", "name-length", "block-depth"],
)
def test_the_documented_limits(text: str, error: str, where: tuple[int, int], message: str) -> None:
    """Each limit of docs/reliability.md's table, one past it: a typed error at the
    line and column of what passes it."""
    with pytest.raises(NncError) as info:
        nnc.parse(text, "l.nn")
    assert type(info.value).__name__ == error
    assert message in info.value.message, info.value.message
    span = info.value.span
    assert span is not None and (span.line, span.col) == where


def test_the_limits_are_not_refused_at_their_value() -> None:
    nnc.parse(BODY % "repeat 10000 { relu }", "l.nn")
    nnc.parse(BODY % ("y" * 128 + " = relu(x)"), "l.nn")
    nnc.parse(_nested_blocks(20), "l.nn")  # names, not depth, bound deeper nesting


def test_a_spec_over_4_mib_is_refused_before_it_is_parsed() -> None:
    from nnc.dsl.parser import MAX_SOURCE_BYTES

    text = "# " + "x" * MAX_SOURCE_BYTES + "\n"
    start = time.monotonic()
    with pytest.raises(ResourceError, match=r"is 4,?194,?307 characters; the limit is 4,?194,?304"):
        nnc.parse(text, "big.nn")
    assert time.monotonic() - start < 1
