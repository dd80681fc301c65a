"""Classification reports against numbers worked out by hand."""

from __future__ import annotations

import pytest

from trainkit.evaluation.metrics import (
    add_confused_with,
    classification_report,
    confusion_matrix,
    summary_scores,
)

# a: 2 of 3 found, never wrongly predicted; b: 1 of 2 found, predicted twice; c: found,
# predicted twice.
TARGETS = ["a", "a", "a", "b", "b", "c"]
PREDICTIONS = ["a", "a", "b", "b", "c", "c"]


def test_per_label_precision_recall_f1_and_support():
    report = classification_report(TARGETS, PREDICTIONS)
    assert report["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1-score": 0.8, "support": 3})
    assert report["b"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1-score": 0.5, "support": 2})
    assert report["c"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1-score": 2 / 3, "support": 1})


def test_accuracy_and_averages():
    report = classification_report(TARGETS, PREDICTIONS)
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["macro avg"] == pytest.approx(
        {"precision": 2 / 3, "recall": 13 / 18, "f1-score": (0.8 + 0.5 + 2 / 3) / 3, "support": 6})
    assert report["weighted avg"] == pytest.approx(
        {"precision": 4.5 / 6, "recall": 4 / 6, "f1-score": (3 * 0.8 + 2 * 0.5 + 2 / 3) / 6, "support": 6})
    assert "micro avg" not in report  # every predicted label is a true label: micro = accuracy
    assert summary_scores(report) == pytest.approx({"accuracy": 4 / 6, "precision": 0.75,
                                                    "f1_score": (3 * 0.8 + 2 * 0.5 + 2 / 3) / 6})


def test_a_label_only_predicted_gives_a_micro_average_and_no_row():
    report = classification_report(["x", "x", "y"], ["x", "z", "y"])
    assert "z" not in report
    assert report["x"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1-score": 2 / 3, "support": 2})
    assert report["micro avg"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1-score": 0.8, "support": 3})
    assert report["accuracy"] == pytest.approx(2 / 3)


def test_confusion_matrix_rows_are_true_labels():
    matrix = confusion_matrix(TARGETS, PREDICTIONS, ["a", "b", "c"])
    assert matrix.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_confused_with_lists_the_most_frequent_wrong_predictions():
    targets = ["a"] * 7 + ["b"]
    predictions = ["a", "b", "b", "b", "c", "c", "d"] + ["b"]
    report = add_confused_with(classification_report(targets, predictions), targets, predictions)
    # a's three most frequent predictions are b (3), c (2) and a (1); d (1) is fourth.
    assert report["a"]["confused_with"] == {"b": 3, "c": 2}
    assert report["b"]["confused_with"] == {}


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="2 targets but 1 predictions"):
        classification_report(["a", "b"], ["a"])
