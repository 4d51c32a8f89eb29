#!/usr/bin/env python3
"""Compile time of a program through kiln against the same program in LibTorch alone.

Compiles bench/hand_mnist_transfer.cpp (hand-written), bench/kiln_mnist_transfer.cpp (the same
program through kiln, feature for feature) and examples/mnist_transfer.cpp (the flagship, which
adds configuration, checkpoints, loggers and a plugin to it) RUNS times each, from scratch, with
the flags the build uses for bench/step.cpp (kiln's include path, -O level, C++20; no
precompiled header), alternating, and prints the best wall time of each and its ratio to the
hand-written one.

Usage: bench/compile_time.py [BUILD_DIR] [RUNS]     (defaults: build, 3)
The build must be configured (it exports compile_commands.json).
"""
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

root = Path(__file__).resolve().parent.parent
build = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "build"
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3

database = build / "compile_commands.json"
if not database.exists():
    sys.exit(f"compile_time.py: {database} is missing; configure the build first")
entry = next((e for e in json.load(open(database)) if e["file"].endswith("bench/step.cpp")), None)
if entry is None:
    sys.exit("compile_time.py: no compile command for bench/step.cpp (configure with KILN_BUILD_BENCHMARKS=ON)")

flags, skip = [], False
for arg in shlex.split(entry["command"]):
    if skip:
        skip = False
    elif arg in ("-o", "-c"):
        skip = True
    else:
        flags.append(arg)


def compile_seconds(source):
    start = time.perf_counter()
    subprocess.run(flags + ["-c", str(source), "-o", "/dev/null"], cwd=entry["directory"], check=True)
    return time.perf_counter() - start


sources = {
    "hand": root / "bench/hand_mnist_transfer.cpp",
    "kiln": root / "bench/kiln_mnist_transfer.cpp",
    "flagship": root / "examples/mnist_transfer.cpp",
}
best = {name: float("inf") for name in sources}
for _ in range(runs):
    for name, source in sources.items():
        best[name] = min(best[name], compile_seconds(source))
for name in sources:
    print(f"compile/{name:<9} {best[name]:6.2f} s   {best[name] / best['hand']:5.2f} x hand")
