#!/usr/bin/python3
"""Search-space dimensions for tests/tune/tune.cpp: each of kiln's distributions, as its JSON is
printed, read by Optuna's own json_to_distribution, beside the distribution Optuna builds from
the same declaration.

Each case: {"ours": "<kiln's distribution JSON>", "reference": {"class": "FloatDistribution",
"kwargs": {...}}}. The answer: {"equal": bool, "ours": repr, "reference": repr}.
"""
import optuna.distributions as d

from json_cases import answer


def compute(case):
    ours = d.json_to_distribution(case["ours"])
    reference = getattr(d, case["reference"]["class"])(**case["reference"]["kwargs"])
    choices_alike = True
    if isinstance(ours, d.CategoricalDistribution):  # 1.0 == 1 and True == 1 in Python: compare types too
        choices_alike = [type(c) for c in ours.choices] == [type(c) for c in reference.choices]
    return {"equal": ours == reference and type(ours) is type(reference) and choices_alike,
            "ours": repr(ours), "reference": repr(reference)}


answer(compute)
