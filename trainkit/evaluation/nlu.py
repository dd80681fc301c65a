"""Evaluating a model on held-out NLU data: intent and entity metrics.

The numbers follow `rasa test nlu`: intent accuracy uses the best intent other than
`nlu_fallback`, and an entity counts as right only when its start, end and type match.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from trainkit.data.training_data import TrainingData
from trainkit.evaluation.metrics import classification_report

FALLBACK_INTENT = "nlu_fallback"


@dataclass
class IntentReport:
    """Intent classification metrics."""

    accuracy: float
    accuracy_with_fallback_wrong: float
    macro_f1: float
    weighted_f1: float
    support: int


def undo_fallback(parse: dict[str, Any]) -> dict[str, Any]:
    """The top-ranked intent that is not the fallback intent, with its confidence.

    Rasa's evaluation undoes a fallback prediction so that it does not hide the intent
    the classifier actually chose; `{"name": None, "confidence": 0.0}` when there is none.
    """
    for item in parse.get("intent_ranking") or []:
        if item.get("name") != FALLBACK_INTENT:
            return {"name": item.get("name"), "confidence": float(item.get("confidence") or 0.0)}
    intent = parse.get("intent") or {}
    if intent.get("name") in (None, FALLBACK_INTENT):
        return {"name": None, "confidence": 0.0}
    return {"name": intent["name"], "confidence": float(intent.get("confidence") or 0.0)}


def best_non_fallback(parse: dict[str, Any]) -> str | None:
    """The top-ranked intent that is not the fallback intent."""
    return undo_fallback(parse)["name"]


def intent_report(truth: list[str], parses: list[dict[str, Any]]) -> IntentReport:
    """Intent metrics of predictions against the true intents."""
    predicted = [best_non_fallback(p) or "" for p in parses]
    raw = [(p.get("intent") or {}).get("name") or "" for p in parses]
    n = len(truth)
    accuracy = sum(t == p for t, p in zip(truth, predicted, strict=True)) / n if n else 0.0
    strict = sum(t == p for t, p in zip(truth, raw, strict=True)) / n if n else 0.0
    report = classification_report(truth, predicted)
    return IntentReport(accuracy, strict, report["macro avg"]["f1-score"], report["weighted avg"]["f1-score"], n)


def entity_report(expected: list[list[tuple[int, int, str]]], parses: list[dict[str, Any]]) -> dict[str, float]:
    """Precision, recall and F1 of entities by exact (start, end, type)."""
    true_positive = false_positive = false_negative = 0
    for gold, parse in zip(expected, parses, strict=True):
        found = {(e["start"], e["end"], e["entity"]) for e in parse.get("entities") or []
                 if e.get("extractor") not in ("RegexMessageHandler",)}
        wanted = set(gold)
        true_positive += len(found & wanted)
        false_positive += len(found - wanted)
        false_negative += len(wanted - found)
    precision = true_positive / (true_positive + false_positive) if true_positive + false_positive else 0.0
    recall = true_positive / (true_positive + false_negative) if true_positive + false_negative else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": true_positive + false_negative}


def evaluate_nlu(model: Any, test_data: TrainingData, batch_size: int = 256) -> dict[str, Any]:
    """Parse every test example and report intent and entity metrics and parse speed."""
    examples = test_data.nlu_examples
    texts = [m.text or "" for m in examples]
    started = time.perf_counter()
    parses: list[dict[str, Any]] = []
    for start in range(0, len(texts), batch_size):
        parses.extend(model.parse_batch(texts[start : start + batch_size]))
    seconds = time.perf_counter() - started
    intents = intent_report([m.intent or "" for m in examples], parses)
    entities = entity_report([[(e.start, e.end, e.entity) for e in m.entities] for m in examples], parses)
    return {
        "examples": len(examples),
        "intent": intents.__dict__,
        "entities": entities,
        "parse_seconds": seconds,
        "parses_per_second": len(examples) / seconds if seconds else None,
    }
