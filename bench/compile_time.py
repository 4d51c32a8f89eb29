#!/usr/bin/env python3
"""Compile time of a program through kiln against the same program in LibTorch alone.

Compiles bench/hand_mnist_transfer.cpp (hand-written) beside each of
  kiln           bench/kiln_mnist_transfer.cpp, the same program through kiln, feature for
                 feature, header-only;
  kiln_compiled  the same file with KILN_SEPARATE_COMPILATION, as a program linking
                 kiln::compiled compiles it (kiln's non-template functions left to that library);
  compiled_part  cmake/kiln_compiled.cpp, that library's one translation unit, compiled once per
                 build and not again when the program changes;
  flagship       examples/mnist_transfer.cpp, which adds configuration, checkpoints, loggers and
                 a plugin to the program, header-only;
  flagship_compiled  the same with KILN_SEPARATE_COMPILATION;
from scratch, with the flags the build uses for bench/step.cpp (kiln's include path, -O level,
C++20; no precompiled header).

The two compilers of a pair run at the same time, one on each core, and each one's CPU time
(user + system) is taken from the kernel. Whatever else slows the machine then slows both
alike: on the shared virtual machines this project runs on, one file's time alone varies by up
to 20 % from run to run, the ratio within a pair by a few per cent. Prints the median over RUNS pairs
of each time and of the ratio to the hand-written one.

With --one-of, it measures kiln::one_of instead: bench/one_of_compile.cpp with 2, 3 and 4
trainers compiled in (KILN_ALTERNATIVES), each beside the same file with 1 (the types written
out), and prints the time each adds per added trainer.

Usage: bench/compile_time.py [BUILD_DIR] [RUNS] [--one-of]     (defaults: build, 3)
The build must be configured (it exports compile_commands.json).
"""
import json
import os
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
one_of = "--one-of" in sys.argv[1:]
arguments = [a for a in sys.argv[1:] if a != "--one-of"]
build = Path(arguments[0]) if len(arguments) > 0 else root / "build"
runs = int(arguments[1]) if len(arguments) > 1 else 3

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


def compile_pair(first, second, second_flags, first_flags=()):
    """CPU seconds of compiling `first` and `second` (with their flags added) side by side."""
    started = {}
    for index, (source, extra) in enumerate(((first, list(first_flags)), (second, second_flags))):
        process = subprocess.Popen(flags + extra + ["-c", str(source), "-o", "/dev/null"], cwd=entry["directory"])
        started[process.pid] = index
    seconds = {}
    while started:
        pid, status, usage = os.wait4(-1, 0)
        index = started.pop(pid, None)
        if index is None:
            continue
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"compile_time.py: {(first, second)[index]} does not compile")
        seconds[index] = usage.ru_utime + usage.ru_stime
    return seconds[0], seconds[1]


if one_of:
    source = root / "bench/one_of_compile.cpp"
    base, added = [], {n: [] for n in (2, 3, 4)}
    for _ in range(runs):
        for n in added:
            one, many = compile_pair(source, source, [f"-DKILN_ALTERNATIVES={n}"], ["-DKILN_ALTERNATIVES=1"])
            base.append(one)
            added[n].append(many - one)
    print(f"one_of/1 trainer    {statistics.median(base):6.2f} s CPU")
    for n, extra in added.items():
        median = statistics.median(extra)
        print(f"one_of/{n} trainers   {statistics.median(base) + median:6.2f} s CPU   +{median:5.2f} s, "
              f"{median / (n - 1):5.2f} s per added trainer   (pairs: {', '.join(f'{e:+.2f}' for e in extra)})")
    sys.exit(0)


hand = root / "bench/hand_mnist_transfer.cpp"
separate = ["-DKILN_SEPARATE_COMPILATION"]
others = {
    "kiln": (root / "bench/kiln_mnist_transfer.cpp", []),
    "kiln_compiled": (root / "bench/kiln_mnist_transfer.cpp", separate),
    "compiled_part": (root / "cmake/kiln_compiled.cpp", separate),
    "flagship": (root / "examples/mnist_transfer.cpp", []),
    "flagship_compiled": (root / "examples/mnist_transfer.cpp", separate),
}
times = {"hand": []} | {name: [] for name in others}
ratios = {name: [] for name in others}
for _ in range(runs):
    for name, (source, extra) in others.items():
        hand_seconds, seconds = compile_pair(hand, source, extra)
        times["hand"].append(hand_seconds)
        times[name].append(seconds)
        ratios[name].append(seconds / hand_seconds)
print(f"compile/hand              {statistics.median(times['hand']):6.2f} s CPU")
for name in others:
    print(f"compile/{name:<17} {statistics.median(times[name]):6.2f} s CPU   {statistics.median(ratios[name]):5.2f} x hand"
          f"   (pairs: {', '.join(f'{r:.3f}' for r in ratios[name])})")
