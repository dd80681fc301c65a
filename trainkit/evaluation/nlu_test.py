"""`trainkit test nlu`: a trained model against labelled NLU examples, as `rasa test nlu`.

Intents are scored on the best intent other than `nlu_fallback` (Rasa undoes a fallback
prediction before scoring, so the fallback does not hide what the classifier chose);
this is the same number `evaluate_nlu` gives the benchmarks. Entities are scored per
extractor, and a predicted entity is right only when its start, end and type match an
annotation exactly. With a response selector, examples of retrieval intents are scored
on the full intent it selects (`faq/ask_name`). Pretrained extractors (Duckling, spaCy) are left out, as in Rasa:
nothing in the test data was annotated for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainkit.data.nlu_reader import read_nlu_file
from trainkit.data.paths import discover_files
from trainkit.data.training_data import Message, TrainingData
from trainkit.engine.component import ENTITY_EXTRACTOR, RESPONSE_SELECTOR
from trainkit.errors import DataError
from trainkit.evaluation.metrics import add_confused_with, classification_report, summary_scores
from trainkit.evaluation.nlu import undo_fallback

NO_ENTITY = "no_entity"
PRETRAINED_EXTRACTORS = frozenset({"DucklingEntityExtractor", "SpacyEntityExtractor"})
# Components with the extractor role that only rewrite what others found.
ENTITY_PROCESSORS = frozenset({"EntitySynonymMapper"})
BATCH_SIZE = 256
DEFAULT_SELECTOR = "default"


@dataclass
class IntentPrediction:
    """One test example's intent: the label, the prediction and its confidence."""

    text: str
    intent: str
    predicted: str | None
    confidence: float

    @property
    def correct(self) -> bool:
        return self.intent == self.predicted

    def as_error(self) -> dict[str, Any]:
        """The `intent_errors.json` entry Rasa writes."""
        return {"text": self.text, "intent": self.intent,
                "intent_prediction": {"name": self.predicted, "confidence": self.confidence}}


@dataclass
class ResponsePrediction:
    """One retrieval-intent example: the full intent (`faq/ask_name`) and the selection."""

    text: str
    intent_response_key: str
    predicted: str | None
    confidence: float

    @property
    def correct(self) -> bool:
        return self.intent_response_key == self.predicted

    def as_error(self) -> dict[str, Any]:
        """The `response_selection_errors.json` entry Rasa writes."""
        return {"text": self.text, "intent_response_key_target": self.intent_response_key,
                "intent_response_key_prediction": {"name": self.predicted, "confidence": self.confidence}}


@dataclass
class EntityEvaluation:
    """One extractor's entity report and the messages it got wrong."""

    extractor: str
    report: dict[str, Any]
    errors: list[dict[str, Any]] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)  # exact-match precision, recall, F1
    targets: list[str] = field(default_factory=list)  # aligned labels, `no_entity` where unmatched
    predictions: list[str] = field(default_factory=list)


@dataclass
class NluTestResult:
    """Everything `rasa test nlu` reports for one test set."""

    intents: list[IntentPrediction]
    intent_report: dict[str, Any]
    entities: list[EntityEvaluation]
    responses: list[ResponsePrediction] | None = None  # None: the model selects no responses
    response_report: dict[str, Any] | None = None

    @property
    def intent_errors(self) -> list[dict[str, Any]]:
        return [p.as_error() for p in self.intents if not p.correct]

    @property
    def response_errors(self) -> list[dict[str, Any]]:
        return [p.as_error() for p in self.responses or [] if not p.correct]

    def summary(self) -> dict[str, Any]:
        """Accuracy, weighted precision and F1 of the intents and of each extractor."""
        return {
            "examples": len(self.intents),
            "intent": summary_scores(self.intent_report),
            "entities": {e.extractor: dict(e.scores) for e in self.entities},
            **({"response_selection": summary_scores(self.response_report)} if self.response_report else {}),
        }


def read_nlu_files(paths: Sequence[str | Path]) -> TrainingData:
    """The NLU examples of every YAML file under `paths` (story files hold none)."""
    data = TrainingData()
    for path in paths:
        for file in discover_files(path):
            data = data.merge(read_nlu_file(file))
    if not data.nlu_examples:
        raise DataError("no NLU examples with an intent to test on", ", ".join(str(p) for p in paths))
    return data


def entity_extractors(pipeline: Sequence[Any]) -> list[str]:
    """Names of the pipeline's trained entity extractors, in pipeline order."""
    names: list[str] = []
    for component in pipeline:
        name = getattr(component, "name", type(component).__name__)
        if ENTITY_EXTRACTOR not in getattr(component, "roles", frozenset()):
            continue
        if name in PRETRAINED_EXTRACTORS or name in ENTITY_PROCESSORS or name in names:
            continue
        if not (getattr(component, "config", None) or {}).get("entity_recognition", True):
            continue
        names.append(name)
    return names


def _label(entity: dict[str, Any]) -> str:
    return str(entity["entity"])


def align_entities(gold: Sequence[dict[str, Any]], predicted: Sequence[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Target and predicted labels of one message, paired by exact span.

    A gold entity and a prediction over the same (start, end) make one pair of their
    types; a gold entity nothing was predicted on pairs with `no_entity`, and so does a
    prediction on a span nobody annotated.
    """
    unmatched = list(predicted)
    targets: list[str] = []
    predictions: list[str] = []
    for entity in sorted(gold, key=lambda e: (e["start"], e["end"])):
        match = next((p for p in unmatched if (p["start"], p["end"]) == (entity["start"], entity["end"])), None)
        targets.append(_label(entity))
        if match is None:
            predictions.append(NO_ENTITY)
        else:
            unmatched.remove(match)
            predictions.append(_label(match))
    for extra in sorted(unmatched, key=lambda e: (e["start"], e["end"])):
        targets.append(NO_ENTITY)
        predictions.append(_label(extra))
    return targets, predictions


def _span(entity: dict[str, Any]) -> dict[str, Any]:
    return {key: entity[key] for key in ("start", "end", "entity", "value") if key in entity}


def evaluate_entities(
    extractor: str, examples: Sequence[Message], parses: Sequence[dict[str, Any]]
) -> EntityEvaluation:
    """One extractor's report over all examples (labels: the entity types annotated)."""
    targets: list[str] = []
    predictions: list[str] = []
    errors: list[dict[str, Any]] = []
    for message, parse in zip(examples, parses, strict=True):
        gold = [e.as_dict() for e in message.entities]
        found = [e for e in parse.get("entities") or [] if e.get("extractor") == extractor]
        message_targets, message_predictions = align_entities(gold, found)
        targets += message_targets
        predictions += message_predictions
        if message_targets != message_predictions:
            errors.append({"text": message.text, "entities": [_span(e) for e in gold],
                           "predicted_entities": [_span(e) for e in found]})
    labels = sorted({t for t in targets if t != NO_ENTITY})
    report = add_confused_with(classification_report(targets, predictions, labels), targets, predictions)
    return EntityEvaluation(extractor, report, errors, exact_match_scores(targets, predictions), targets, predictions)


def exact_match_scores(targets: Sequence[str], predictions: Sequence[str]) -> dict[str, float]:
    """Precision, recall and F1 over all entities of aligned label pairs: a hit is a
    predicted entity with the annotated span and type (what `entity_report` counts)."""
    hits = sum(t == p != NO_ENTITY for t, p in zip(targets, predictions, strict=True))
    predicted = sum(p != NO_ENTITY for p in predictions)
    annotated = sum(t != NO_ENTITY for t in targets)
    precision = hits / predicted if predicted else 0.0
    recall = hits / annotated if annotated else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1_score": f1, "support": annotated}


def evaluate_intents(examples: Sequence[Message], parses: Sequence[dict[str, Any]]) -> tuple[list[IntentPrediction], dict[str, Any]]:
    """Each example's intent prediction and the intent report with `confused_with`."""
    results = []
    for message, parse in zip(examples, parses, strict=True):
        best = undo_fallback(parse)
        results.append(IntentPrediction(message.text or "", message.intent or "", best["name"], best["confidence"]))
    targets = [r.intent for r in results]
    predictions = [r.predicted or "" for r in results]
    report = add_confused_with(classification_report(targets, predictions), targets, predictions)
    return results, report


def evaluate_responses(
    examples: Sequence[Message], parses: Sequence[dict[str, Any]]
) -> tuple[list[ResponsePrediction], dict[str, Any]]:
    """Response selection on the examples of retrieval intents.

    The selection is read from the selector trained for the example's retrieval intent
    when there is one, else from the `default` selector, as Rasa reads it.
    """
    results = []
    for message, parse in zip(examples, parses, strict=True):
        if not message.intent_response_key:
            continue
        selectors = parse.get("response_selector") or {}
        key = message.intent if message.intent in selectors else DEFAULT_SELECTOR
        response = (selectors.get(key) or {}).get("response") or {}
        results.append(ResponsePrediction(message.text or "", message.intent_response_key,
                                          response.get("intent_response_key"),
                                          float(response.get("confidence") or 0.0)))
    targets = [r.intent_response_key for r in results]
    predictions = [r.predicted or "" for r in results]
    return results, add_confused_with(classification_report(targets, predictions), targets, predictions)


def parse_all(model: Any, texts: Sequence[str], batch_size: int = BATCH_SIZE) -> list[dict[str, Any]]:
    """Parse results of every text, in batches."""
    parses: list[dict[str, Any]] = []
    for start in range(0, len(texts), batch_size):
        parses.extend(model.parse_batch(list(texts[start : start + batch_size])))
    return parses


def run_nlu_test(model: Any, data: TrainingData) -> NluTestResult:
    """Parse every labelled example of `data` with `model` and score intents and entities."""
    examples = data.nlu_examples
    parses = parse_all(model, [m.text or "" for m in examples])
    return score_parses(examples, parses, entity_extractors(model.pipeline), selects_responses(model.pipeline))


def selects_responses(pipeline: Sequence[Any]) -> bool:
    """Whether the pipeline has a response selector to score."""
    return any(RESPONSE_SELECTOR in getattr(component, "roles", frozenset()) for component in pipeline)


def score_parses(examples: Sequence[Message], parses: Sequence[dict[str, Any]], extractors: Sequence[str],
                 responses: bool = False) -> NluTestResult:
    """The NLU test result of already parsed examples (cross-validation pools its folds)."""
    intents, report = evaluate_intents(examples, parses)
    result = NluTestResult(intents, report, [evaluate_entities(name, examples, parses) for name in extractors])
    if responses:
        result.responses, result.response_report = evaluate_responses(examples, parses)
    return result

