"""Rebuild nnc/data/digits.npz and nnc/data/iris.npz from a scikit-learn wheel.

nnc ships these two small data sets inside the package so that training never needs
the network. They were taken once from scikit-learn's wheel (BSD-3-Clause), which
carries copies of the UCI data (see nnc/data/README.md for provenance and licences):

    pip download scikit-learn --no-deps -d /tmp/skl
    python scripts/make_builtin_data.py /tmp/skl/scikit_learn-*.whl

Features are stored as float32, labels as int64.
"""

from __future__ import annotations

import argparse
import gzip
import io
import zipfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "nnc" / "data"


def _rows(text: str) -> np.ndarray:
    return np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float64, ndmin=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="a scikit-learn .whl file")
    args = parser.parse_args()
    with zipfile.ZipFile(args.wheel) as wheel:
        digits = _rows(gzip.decompress(wheel.read("sklearn/datasets/data/digits.csv.gz")).decode())
        # iris.csv starts with a header "150,4,setosa,versicolor,virginica".
        iris = _rows(wheel.read("sklearn/datasets/data/iris.csv").decode().split("\n", 1)[1])
    for name, table in (("digits", digits), ("iris", iris)):
        x = table[:, :-1].astype(np.float32)
        y = table[:, -1].astype(np.int64)
        np.savez_compressed(OUT / f"{name}.npz", x=x, y=y)
        print(f"{name}: x {x.shape} {x.dtype}, y {y.shape}, classes {np.bincount(y).tolist()}")


if __name__ == "__main__":
    main()
