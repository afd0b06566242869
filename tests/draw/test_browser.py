"""The HTML picture in a real headless browser (Debian's Chromium driven by Selenium):
the nodes render, a click shows a node's details and source line, a cluster folds,
the wheel zooms, and the console stays free of errors."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nnc.draw import load_drawable, render
from tests.conftest import EXAMPLES

CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1200,900",
]

_missing = [p for p in (CHROMIUM, DRIVER) if not Path(p).exists()]
if shutil.which("dot") is None:
    _missing.append("dot")
try:
    import selenium  # noqa: F401
except ImportError:
    _missing.append("selenium")
if _missing:
    if os.environ.get("CI"):
        raise RuntimeError(f"CI must have {', '.join(_missing)}: .ci/run installs them")
    pytest.skip(f"not installed: {', '.join(_missing)}", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    folder = tmp_path_factory.mktemp("html")
    drawable = load_drawable(EXAMPLES / "resnet_block.nn")
    diagram = drawable.diagram()
    html_file = folder / "resnet.html"
    html_file.write_bytes(render(diagram, "html"))
    options = Options()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(dir=folder)
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        driver.get(html_file.as_uri())
        yield driver, diagram
    finally:
        driver.quit()


def test_nodes_render(page: tuple[Any, Any]) -> None:
    driver, diagram = page
    assert driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true"
    sizes = driver.execute_script(
        "return Array.from(document.querySelectorAll('g.node')).map(g => {"
        "  const b = g.getBoundingClientRect(); return [g.id, b.width, b.height]; });"
    )
    assert len(sizes) == len(diagram.boxes) == 20
    assert all(w > 5 and h > 5 for _, w, h in sizes), sizes


def test_click_shows_details_and_source_line(page: tuple[Any, Any]) -> None:
    driver, diagram = page
    k = next(i for i, b in enumerate(diagram.boxes) if b.id == "residual_1_conv2d_1")
    driver.find_element(By.ID, f"box_{k}").click()
    details = driver.find_element(By.ID, "details").text
    assert "residual_1_conv2d_1" in details
    assert "conv2d(16, 3, padding = same)" in details
    assert "[16, 8, 8]" in details and "2,320" in details and "147,456" in details
    assert "resnet_block.nn:7:14" in details
    assert "y = x |> conv2d(c, kernel = 3, padding = same) |> batchnorm |> relu" in details
    assert "selected" in driver.find_element(By.ID, f"box_{k}").get_attribute("class")


def test_cluster_folds_and_unfolds(page: tuple[Any, Any]) -> None:
    driver, diagram = page
    members = [f"box_{i}" for i, b in enumerate(diagram.boxes) if b.cluster == "residual_1"]
    assert len(members) == 7
    title = driver.find_element(By.CSS_SELECTOR, "#cluster_0 > text")
    title.click()
    shown = [driver.find_element(By.ID, m).is_displayed() for m in members]
    assert shown == [False] * 7
    assert "folded" in driver.find_element(By.ID, "cluster_0").get_attribute("class")
    assert "residual_1 = residual(16)" in driver.find_element(By.ID, "details").text
    driver.find_element(By.ID, "unfold").click()
    assert all(driver.find_element(By.ID, m).is_displayed() for m in members)


def test_wheel_zooms_and_fit_shows_the_whole(page: tuple[Any, Any]) -> None:
    driver, _ = page

    def view() -> list[float]:
        return driver.execute_script(
            "const b = document.querySelector('#stage svg').viewBox.baseVal;"
            "return [b.x, b.y, b.width, b.height];"
        )

    # The network is tall: it opens at its top, not shrunk to fit the stage.
    whole = driver.execute_script("return document.querySelector('#stage svg').getBBox().height")
    assert view()[3] < whole
    driver.find_element(By.ID, "zoom-fit").click()
    fitted = view()
    assert fitted[3] >= whole
    driver.execute_script(
        "const s = document.getElementById('stage'); const r = s.getBoundingClientRect();"
        "s.dispatchEvent(new WheelEvent('wheel', {deltaY: -100, clientX: r.left + r.width / 2,"
        " clientY: r.top + r.height / 2, bubbles: true, cancelable: true}));"
    )
    assert view()[2] == pytest.approx(fitted[2] / 1.15, rel=1e-6)
    driver.find_element(By.ID, "zoom-fit").click()
    assert view() == pytest.approx(fitted)


def test_no_console_errors(page: tuple[Any, Any]) -> None:
    driver, _ = page
    logs = driver.get_log("browser")
    assert [entry for entry in logs if entry["level"] in ("SEVERE", "WARNING")] == []
