#!/usr/bin/python3
"""Writes scikit-learn's bundled tables as CSV files under data/, for kiln's examples.

    data/breast_cancer.csv   the Wisconsin diagnostic breast-cancer table (569 rows): the 30
                             features under their scikit-learn names, then "target"
                             (scikit-learn's coding: 0 = malignant, 1 = benign)

Idempotent: a file that already holds the expected number of rows is left alone. Runs under
/usr/bin/python3, which sees Debian's python3-sklearn (scripts/setup.sh installs it).
"""
import csv
import os
import sys

from sklearn.datasets import load_breast_cancer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "data")


def rows_in(path):
    with open(path, newline="") as f:
        return sum(1 for _ in f) - 1  # less the header


def write_breast_cancer(path):
    table = load_breast_cancer()
    if os.path.exists(path) and rows_in(path) == len(table.target):
        return False
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = path + ".partial"
    with open(partial, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow([*table.feature_names, "target"])
        for features, target in zip(table.data, table.target):
            out.writerow([*(repr(float(v)) for v in features), int(target)])
    os.replace(partial, path)  # a reader never sees half a file
    return True


def main():
    path = os.path.join(DATA, "breast_cancer.csv")
    wrote = write_breast_cancer(path)
    print(f"[setup] {'wrote' if wrote else 'kept'} {os.path.relpath(path, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
