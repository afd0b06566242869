"""Files that are not regular files: a named pipe (which would block forever waiting
for a writer), a device such as ``/dev/zero`` (which never ends) and a checkpoint
that is a symlink to one. Every reader of a user file refuses them before reading,
so each command exits 1 at once; the tests run nnc in a subprocess with a timeout so
a regression fails instead of hanging the suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, run_nnc

XOR = EXAMPLES / "xor.nn"


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def _refused(result, path: Path, kind: str) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == 1, result.stderr
    assert f"cannot read {path}: it is {kind}, not a regular file" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["check", "{}"],
        ["import", "{}", "-o", "m.nn"],
        ["run", "{}", "--input", "x.npz"],
        ["eval", str(XOR), "--weights", "{}"],
        ["predict", str(XOR), "--weights", "{}", "--input", "x.csv", "-o", "p.csv"],
    ],
)
@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_special_files_are_refused_before_reading(
    args: list[str], special: str, fifo: Path, tmp_path: Path
) -> None:
    path = fifo if special == "fifo" else Path(special)
    kind = "a named pipe" if special == "fifo" else "a device"
    result = run_nnc(*(str(path) if a == "{}" else a for a in args), cwd=tmp_path, timeout=60)
    _refused(result, path, kind)


def test_a_checkpoint_linked_to_dev_zero_is_skipped_on_resume(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = run_nnc("train", str(XOR), "--epochs", "2", "--out", str(run), timeout=120)
    assert first.returncode == 0, first.stderr
    checkpoints = sorted((run / "checkpoints").glob("epoch-*.safetensors"))
    assert checkpoints
    newest = checkpoints[-1]
    forged = newest.with_name("epoch-000099.safetensors")
    forged.symlink_to("/dev/zero")
    result = run_nnc("train", str(XOR), "--resume", str(run), "--epochs", "3", timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"checkpoint {forged} is damaged and was skipped" in result.stderr
    assert "it is a device, not a regular file" in result.stderr


def test_resume_removes_the_temporaries_a_killed_run_left(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = run_nnc("train", str(XOR), "--epochs", "2", "--out", str(run), timeout=120)
    assert first.returncode == 0, first.stderr
    leftovers = [
        run / "checkpoints" / ".epoch-000044.safetensors.k2j_x9qa.tmp",
        run / ".loss.png.3fz0q1ab.png",
    ]
    for p in leftovers:
        p.write_bytes(b"")
    kept = run / "checkpoints" / ".mine.tmp"
    kept.write_bytes(b"")
    result = run_nnc("train", str(XOR), "--resume", str(run), "--epochs", "3", timeout=120)
    assert result.returncode == 0, result.stderr
    assert not any(p.exists() for p in leftovers)
    assert kept.exists()
