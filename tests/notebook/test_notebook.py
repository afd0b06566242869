"""A notebook executed headlessly (nbclient and ipykernel): a Program and a Model show
their summary table and picture, and training shows one progress display that ends
on the run's last epoch."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[2]

CELLS = [
    "import nnc\nfrom nnc.notebook import NotebookReporter",
    f"program = nnc.load({str(EXAMPLES / 'resnet_block.nn')!r})\nprogram",
    f"nnc.load({str(EXAMPLES / 'autoencoder.nn')!r}).model('Autoencoder')",
    f"xor = nnc.load({str(EXAMPLES / 'xor.nn')!r})\n"
    "result = nnc.fit(xor, epochs=300, save=False, reporter=NotebookReporter())",
    "print(f\"last {result.history[-1]['loss']:.4g} final {result.final['loss']:.4g}\")",
    f"quick = nnc.fit({str(EXAMPLES / 'xor.nn')!r}, epochs=5, save=False)",  # no reporter
]


@pytest.fixture(scope="module")
def executed() -> list:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    client = nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()
    return notebook.cells


def test_program_shows_table_and_picture(executed: list) -> None:
    (out,) = executed[1].outputs
    assert out["output_type"] == "execute_result"
    table = out["data"]["text/html"]
    assert '<table class="nnc-summary"' in table
    assert "residual_1_conv2d_1" in table and "[16, 8, 8]" in table
    assert ">9,738<" in table  # the total parameter count, as nnc summary prints it
    assert table.count("<svg") == 1
    svg = out["data"]["image/svg+xml"]
    assert svg.startswith("<svg")
    assert svg.count('class="node"') == 20  # image, 18 layers, the output


def test_model_shows_its_calls(executed: list) -> None:
    (out,) = executed[2].outputs
    page = out["data"]["text/html"]
    assert "model Autoencoder" in page
    assert "call Encoder" not in page  # the model alone does not hold its callees
    assert "Encoder (not shown)" in page
    assert "image/svg+xml" in out["data"]


def test_training_progress_updates_one_display(executed: list) -> None:
    outputs = executed[3].outputs
    displays = [o for o in outputs if o["output_type"] == "display_data"]
    assert len(displays) == 1, [o["output_type"] for o in outputs]
    page = displays[0]["data"]["text/html"]
    assert "<progress value='300' max='300'" in page
    assert "epoch 300/300" in page
    (printed,) = executed[4].outputs
    last, final = re.fullmatch(r"last (\S+) final (\S+)\n", printed["text"]).groups()
    assert f"epoch 300/300  loss {last}" in page  # the display ends on the last epoch
    assert "Xor: completed after 300 epochs" in page
    assert f"final loss {final}" in page


def test_fit_without_a_reporter_shows_the_display_in_a_notebook(executed: list) -> None:
    outputs = executed[5].outputs
    assert [o["output_type"] for o in outputs] == ["display_data"]
    page = outputs[0]["data"]["text/html"]
    assert "<progress value='5' max='5'" in page
    assert "Xor: completed after 5 epochs" in page
