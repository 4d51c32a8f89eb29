#!/usr/bin/env python3
"""Compile time of the flagship example through kiln against the same program in LibTorch alone.

Compiles examples/mnist_transfer.cpp (kiln) and bench/hand_mnist_transfer.cpp (hand-written)
RUNS times each, from scratch, with the flags the build uses for bench/step.cpp (kiln's include
path, -O level, C++20; no precompiled header), alternating the two, and prints the best wall
time of each and their ratio.

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


sources = {"kiln": root / "examples/mnist_transfer.cpp", "hand": root / "bench/hand_mnist_transfer.cpp"}
best = {name: float("inf") for name in sources}
for _ in range(runs):
    for name, source in sources.items():
        best[name] = min(best[name], compile_seconds(source))
for name in sources:
    print(f"compile/flagship/{name}   {best[name]:6.2f} s")
print(f"ratio kiln/hand           {best['kiln'] / best['hand']:6.3f}")
