#!/usr/bin/python3
"""Reference values for kiln's metrics, from scikit-learn (and, for MRR and MAP@k, which
scikit-learn lacks, from their definitions in kiln/metrics/ranking.hpp written in numpy).

Usage: /usr/bin/python3 sklearn_metrics.py CASES RESULTS

CASES holds, for each case, three lines written by tests/metrics/parity.hpp:
    <id> <metric> [key=value ...]       e.g. "7 f1 average=macro beta=1 zero_division=0"
    <ndim> <dims...> <values...>        the output (scores, logits, predictions)
    <ndim> <dims...> <values...>        the target (classes, values, relevance)
RESULTS gets one line per case: "<id> <count> <values...>", each value as Python's repr of a
float (17 significant digits, "nan" where scikit-learn raises because the value is undefined).

Conventions shared with kiln (kiln/metrics/inputs.hpp): class scores [N, C] predict their
argmax (numpy's argmax, like torch's, takes the first of equal maxima); a single column [N] or
[N, 1] holds a binary classifier's logit, predicting 1 where it is > 0.
"""
import sys
import warnings

import numpy as np
from sklearn import metrics as skm


def read_tensor(line):
    tokens = line.split()
    ndim = int(tokens[0])
    shape = tuple(int(t) for t in tokens[1 : 1 + ndim])
    return np.array([float(t) for t in tokens[1 + ndim :]], dtype=np.float64).reshape(shape)


def is_single_logit(output):
    return output.ndim == 1 or (output.ndim == 2 and output.shape[1] == 1)


def predictions(output):
    if is_single_logit(output):
        return (output.reshape(-1) > 0).astype(np.int64)
    return output.argmax(axis=1)


def one_vs_rest(y, classes):
    return (y[:, None] == np.arange(classes)[None, :]).astype(np.int64)


# For one-vs-rest, the output is the probabilities kiln ranks (tests/metrics/auroc.cpp writes
# torch's softmax of the logits: softmax computed twice, by torch and numpy, can round two
# probabilities that are equal in exact arithmetic differently, and so break a tie differently).
def auroc(y, scores, average):
    if average == "binary":
        return skm.roc_auc_score(y, scores.reshape(-1))
    classes = scores.shape[1]
    if classes > 2:
        return skm.roc_auc_score(y, scores, multi_class="ovr", average=average, labels=list(range(classes)))
    # With two columns scikit-learn's multi-class path does not apply; one-vs-rest is its
    # binary score per column, averaged as roc_auc_score(multi_class="ovr") averages.
    truth = one_vs_rest(y, classes)
    if average == "micro":
        return skm.roc_auc_score(truth.ravel(), scores.ravel())
    per_class = [skm.roc_auc_score(truth[:, c], scores[:, c]) for c in range(classes)]
    weights = truth.sum(axis=0) if average == "weighted" else None
    return np.average(per_class, weights=weights)


def average_precision(y, scores, average):
    if average == "binary":
        return skm.average_precision_score(y, scores.reshape(-1))
    return skm.average_precision_score(one_vs_rest(y, scores.shape[1]), scores, average=average)


def set_score(metric, y, output, options):
    precision, recall, f, _ = skm.precision_recall_fscore_support(
        y,
        predictions(output),
        average=options["average"],
        beta=float(options.get("beta", 1)),
        zero_division=int(float(options["zero_division"])),
    )
    return {"precision": precision, "recall": recall, "f1": f, "fbeta": f}[metric]


def ranked_relevant(scores, relevance):
    """Relevance > 0 in ranked order: a stable sort by descending score (earlier item first)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    return np.take_along_axis(relevance, order, axis=1) > 0


def mean_reciprocal_rank(scores, relevance):
    values = []
    for row in ranked_relevant(scores, relevance):
        hits = np.flatnonzero(row)
        values.append(1.0 / (hits[0] + 1) if hits.size else 0.0)
    return np.mean(values)


def mean_average_precision(scores, relevance, k):
    """Mean over queries of (1 / min(k, R)) * sum_{i <= k} P@i * rel_i; 0 for a query with R = 0."""
    values = []
    for row in ranked_relevant(scores, relevance):
        relevant = row.sum()
        if relevant == 0:
            values.append(0.0)
            continue
        cut = row.size if k is None else min(k, row.size)
        precision_at = np.cumsum(row) / np.arange(1, row.size + 1)
        values.append((precision_at * row)[:cut].sum() / (relevant if k is None else min(k, relevant)))
    return np.mean(values)


def reference(metric, options, output, target):
    k = int(options["k"]) if "k" in options else None
    if metric in ("accuracy", "top_k_accuracy", "confusion_matrix", "precision", "recall", "f1", "fbeta",
                  "auroc", "average_precision"):
        y = target.reshape(-1).astype(np.int64)
        if metric == "accuracy":
            return skm.accuracy_score(y, predictions(output))
        if metric == "top_k_accuracy":
            return skm.top_k_accuracy_score(y, output, k=k, labels=list(range(output.shape[1])))
        if metric == "confusion_matrix":
            classes = 2 if is_single_logit(output) else output.shape[1]
            return skm.confusion_matrix(y, predictions(output), labels=list(range(classes))).ravel()
        if metric == "auroc":
            return auroc(y, output, options["average"])
        if metric == "average_precision":
            return average_precision(y, output, options["average"])
        return set_score(metric, y, output, options)
    if metric in ("mae", "mse", "rmse", "r2"):
        predicted = output.reshape(target.shape)
        if metric == "mae":
            return skm.mean_absolute_error(target, predicted)
        if metric == "mse":
            return skm.mean_squared_error(target, predicted)
        if metric == "rmse":
            return skm.mean_squared_error(target, predicted, squared=False)
        return skm.r2_score(target, predicted)
    if metric == "ndcg":
        return skm.ndcg_score(target, output, k=k if k else None)
    if metric == "mrr":
        return mean_reciprocal_rank(output, target)
    if metric == "map":
        return mean_average_precision(output, target, k if k else None)
    raise SystemExit(f"sklearn_metrics.py: unknown metric {metric!r}")


# Where scikit-learn raises ValueError because the value is undefined (AUROC with one class in
# the targets; NDCG of lists of one item), the reference is nan. Anywhere else an error is a bug.
UNDEFINED_RAISES = ("auroc", "ndcg")


def main(cases_path, results_path):
    warnings.simplefilter("ignore")  # undefined values are part of what is compared
    with open(cases_path) as cases:
        lines = cases.read().splitlines()
    with open(results_path, "w") as results:
        for i in range(0, len(lines), 3):
            head = lines[i].split()
            case_id, metric = head[0], head[1]
            options = dict(token.split("=", 1) for token in head[2:])
            output, target = read_tensor(lines[i + 1]), read_tensor(lines[i + 2])
            try:
                values = np.atleast_1d(np.asarray(reference(metric, options, output, target), dtype=np.float64))
            except ValueError:
                if metric not in UNDEFINED_RAISES:
                    raise
                values = np.array([np.nan])
            results.write(f"{case_id} {values.size} {' '.join(repr(float(v)) for v in values)}\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
