#!/usr/bin/python3
"""Ensemble rules for tests/ensemble/combiners.cpp: soft and hard voting by scikit-learn's own
VotingClassifier, over members whose outputs are fixed; the geometric mean of probabilities and
the mean of ranks by their definitions, in numpy and scipy.

Each case: {"rule": "soft" | "hard" | "logit_mean" | "rank_mean", "kind": "class_scores" |
"binary_logits", "outputs": [member outputs, each a nested list], "weights": [...] or null}.
The answer: {"result": nested list} (class probabilities, labels, or scores).
"""
import numpy as np
from scipy.special import expit, softmax
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import VotingClassifier

from json_cases import answer


class Fixed(BaseEstimator, ClassifierMixin):
    """A fitted member whose outputs are given: row i of X asks for sample X[i, 0]."""

    def __init__(self, probas=None, labels=None):
        self.probas = probas
        self.labels = labels

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.asarray(self.probas)[X[:, 0].astype(int)]

    def predict(self, X):
        return np.asarray(self.labels)[X[:, 0].astype(int)]


def member_probas(output, kind):
    if kind == "class_scores":
        return softmax(output, axis=-1)
    p1 = expit(output.reshape(-1))
    return np.stack([1 - p1, p1], axis=1)


def member_labels(output, kind):
    return output.argmax(axis=-1) if kind == "class_scores" else (output.reshape(-1) > 0).astype(np.int64)


def compute(case):
    kind = case["kind"]
    outputs = [np.asarray(o, dtype=np.float64) for o in case["outputs"]]
    weights = case["weights"]
    n = outputs[0].shape[0]
    classes = outputs[0].shape[1] if kind == "class_scores" else 2
    rule = case["rule"]
    if rule in ("soft", "hard"):
        members = [(f"m{i}", Fixed(probas=member_probas(o, kind), labels=member_labels(o, kind)))
                   for i, o in enumerate(outputs)]
        vote = VotingClassifier(members, voting=rule, weights=weights)
        vote.fit(np.arange(classes).reshape(-1, 1) % n, np.arange(classes))
        rows = np.arange(n).reshape(-1, 1)
        result = vote.predict_proba(rows) if rule == "soft" else vote.predict(rows)
        if rule == "soft" and kind == "binary_logits":
            result = result[:, 1]
        return {"result": result.tolist()}
    w = np.ones(len(outputs)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    if rule == "logit_mean":  # the normalized weighted geometric mean of the members' probabilities
        log_p = sum(wi * np.log(member_probas(o, kind)) for wi, o in zip(w, outputs))
        g = np.exp(log_p)
        g = g / g.sum(axis=1, keepdims=True)
        return {"result": (g if kind == "class_scores" else g[:, 1]).tolist()}
    # rank_mean: each member's ranks (ties share their mean rank) over N, averaged with the weights
    scores = [o[:, 1] - o[:, 0] if kind == "class_scores" else o.reshape(-1) for o in outputs]
    return {"result": sum(wi * rankdata(s, method="average") / n for wi, s in zip(w, scores)).tolist()}


answer(compute)
