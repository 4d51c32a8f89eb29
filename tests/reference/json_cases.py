"""The Python side of tests/reference/reference.hpp: reads a JSON list of cases from argv[1]
and writes the list of compute(case) to argv[2]."""
import json
import sys


def answer(compute):
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    with open(sys.argv[2], "w") as f:
        json.dump([compute(case) for case in cases], f)
