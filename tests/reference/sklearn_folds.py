#!/usr/bin/python3
"""scikit-learn's folds for tests/cv/splitters.cpp.

Each case: {"splitter": "k_fold" | "stratified_k_fold" | "repeated_stratified_k_fold",
"folds", "shuffle", "seed", "repeats", "labels"}. The answer: {"folds": [[train, test], ...]}
with the indices as lists, and "warning" holding the text of a UserWarning when one was raised;
or {"error": <message>} when scikit-learn refuses the case.
"""
import warnings

import numpy as np
from sklearn.model_selection import KFold, RepeatedStratifiedKFold, StratifiedKFold

from json_cases import answer


def splitter(case):
    name = case["splitter"]
    if name == "k_fold":
        return KFold(case["folds"], shuffle=case["shuffle"], random_state=case["seed"] if case["shuffle"] else None)
    if name == "stratified_k_fold":
        return StratifiedKFold(case["folds"], shuffle=case["shuffle"],
                               random_state=case["seed"] if case["shuffle"] else None)
    return RepeatedStratifiedKFold(n_splits=case["folds"], n_repeats=case["repeats"], random_state=case["seed"])


def compute(case):
    labels = np.asarray(case["labels"])
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            folds = [[train.tolist(), test.tolist()]
                     for train, test in splitter(case).split(np.zeros((len(labels), 1)), labels)]
    except ValueError as e:
        return {"error": str(e)}
    out = {"folds": folds}
    user_warnings = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    if user_warnings:
        out["warning"] = user_warnings[0]
    return out


answer(compute)
