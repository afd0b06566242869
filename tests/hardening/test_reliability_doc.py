"""docs/reliability.md: every test a row names exists (the rows are run as part of
the suite, so existing means passing)."""

from __future__ import annotations

import re

from tests.conftest import ROOT

REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def test_every_named_test_exists() -> None:
    text = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    table_rows = [r for r in rows if not r.startswith("| bad input")]
    assert len(table_rows) >= 30
    for row in table_rows:
        assert REFERENCE.search(row), f"a row without a test: {row[:80]}"
    for path, name in REFERENCE.findall(text):
        source = (ROOT / path).read_text(encoding="utf-8")
        assert re.search(rf"^def {name}\(", source, re.M), f"{path}::{name} does not exist"
