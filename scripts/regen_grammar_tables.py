"""Rebuild nnc/dsl/grammar_tables.json after editing nnc/dsl/grammar.lark."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nnc.dsl.tables import write_tables

if __name__ == "__main__":
    print(f"wrote {write_tables()}")
