"""Classification metrics in numpy, shaped as Rasa's reports are.

Rasa writes scikit-learn's `classification_report(..., output_dict=True)`; trainkit
computes the same numbers without depending on scikit-learn. Labels are the true labels
(as Rasa passes them), so a label that is only ever predicted lowers precision of
nothing and appears only in the confusion matrix and in `confused_with`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

# How many of a label's most frequent predictions Rasa looks at for `confused_with`.
CONFUSION_CANDIDATES = 3


def unique_labels(*label_lists: Iterable[str]) -> list[str]:
    """Every label of the given lists, sorted (the rows and columns of a confusion matrix)."""
    return sorted({label for labels in label_lists for label in labels})


def confusion_matrix(targets: Sequence[str], predictions: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Counts of (true label, predicted label); rows are true labels. Pairs with a label
    outside `labels` are not counted."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for target, prediction in zip(targets, predictions, strict=True):
        if target in index and prediction in index:
            matrix[index[target], index[prediction]] += 1
    return matrix


def _scores(true_positives: np.ndarray, predicted: np.ndarray, support: np.ndarray) -> tuple[np.ndarray, ...]:
    # An undefined ratio (nothing predicted, nothing to find) is 0, as scikit-learn reports it.
    precision = np.divide(true_positives, predicted, out=np.zeros(len(predicted)), where=predicted > 0)
    recall = np.divide(true_positives, support, out=np.zeros(len(support)), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros(len(total)), where=total > 0)
    return precision, recall, f1


def _row(precision: float, recall: float, f1: float, support: int) -> dict[str, Any]:
    return {"precision": float(precision), "recall": float(recall), "f1-score": float(f1), "support": int(support)}


def classification_report(
    targets: Sequence[str], predictions: Sequence[str], labels: Sequence[str] | None = None
) -> dict[str, Any]:
    """Per-label precision, recall, F1 and support, plus `accuracy`, `macro avg` and
    `weighted avg`.

    `labels` defaults to the true labels. When predictions use labels outside them, a
    `micro avg` row is added (scikit-learn's name for it); `accuracy` is always there,
    over every pair.
    """
    if len(targets) != len(predictions):
        raise ValueError(f"{len(targets)} targets but {len(predictions)} predictions")
    labels = sorted(set(targets)) if labels is None else list(labels)
    targets_array = np.asarray(list(targets), dtype=object)
    predictions_array = np.asarray(list(predictions), dtype=object)
    hits = targets_array == predictions_array
    true_positives = np.array([np.sum(hits & (targets_array == label)) for label in labels], dtype=float)
    predicted = np.array([np.sum(predictions_array == label) for label in labels], dtype=float)
    support = np.array([np.sum(targets_array == label) for label in labels], dtype=float)
    precision, recall, f1 = _scores(true_positives, predicted, support)
    report: dict[str, Any] = {
        label: _row(precision[i], recall[i], f1[i], support[i]) for i, label in enumerate(labels)
    }
    report["accuracy"] = float(hits.mean()) if len(hits) else 0.0
    if not set(labels) >= set(unique_labels(targets, predictions)):
        micro = _scores(true_positives.sum(keepdims=True), predicted.sum(keepdims=True), support.sum(keepdims=True))
        report["micro avg"] = _row(micro[0][0], micro[1][0], micro[2][0], support.sum())
    count = len(labels)
    report["macro avg"] = _row(
        precision.mean() if count else 0.0, recall.mean() if count else 0.0, f1.mean() if count else 0.0,
        support.sum(),
    )
    weights = support / support.sum() if support.sum() else np.zeros(count)
    report["weighted avg"] = _row(
        float(precision @ weights), float(recall @ weights), float(f1 @ weights), support.sum()
    )
    return report


def add_confused_with(
    report: dict[str, Any], targets: Sequence[str], predictions: Sequence[str], exclude: Iterable[str] = ()
) -> dict[str, Any]:
    """Add `confused_with` to each label's row: among the label's (up to) three most
    frequent predictions, the wrong ones and how often they were made."""
    excluded = set(exclude)
    labels = unique_labels(targets, predictions)
    matrix = confusion_matrix(targets, predictions, labels)
    for i, label in enumerate(labels):
        row = report.get(label)
        if label in excluded or not isinstance(row, dict):
            continue
        ranked = sorted(range(len(labels)), key=lambda j: (-matrix[i, j], labels[j]))[:CONFUSION_CANDIDATES]
        row["confused_with"] = {
            labels[j]: int(matrix[i, j])
            for j in ranked
            if j != i and matrix[i, j] > 0 and labels[j] not in excluded
        }
    return report


def summary_scores(report: dict[str, Any]) -> dict[str, float]:
    """The three numbers Rasa prints and cross-validates: accuracy and the weighted
    precision and F1."""
    weighted = report.get("weighted avg") or {}
    return {
        "accuracy": float(report.get("accuracy", 0.0)),
        "precision": float(weighted.get("precision", 0.0)),
        "f1_score": float(weighted.get("f1-score", 0.0)),
    }
