"""NLU test scoring on parse results built by hand: fallback undone, exact-span entity
matching per extractor, and the errors Rasa lists."""

from __future__ import annotations

import pytest

from trainkit.data.training_data import Entity, Message
from trainkit.evaluation import entity_report
from trainkit.evaluation.nlu_test import (
    NO_ENTITY,
    align_entities,
    entity_extractors,
    evaluate_entities,
    score_parses,
)

TEXT = "a large oat latte"
GOLD = (Entity(2, 7, "large", "size"), Entity(8, 11, "oat", "milk"), Entity(12, 17, "latte", "drink"))


def _entity(start, end, label, extractor="DIETClassifier"):
    return {"start": start, "end": end, "entity": label, "value": TEXT[start:end], "extractor": extractor}


# size right; milk predicted over a longer span (wrong); the drink span typed as size
# (wrong); a spurious drink on "a"; and a regex match that belongs to another extractor.
PREDICTED = [_entity(2, 7, "size"), _entity(8, 17, "milk"), _entity(12, 17, "size"), _entity(0, 1, "drink"),
             _entity(2, 7, "size", extractor="RegexEntityExtractor")]


def _parse(intent, confidence, ranking=None, entities=()):
    return {"text": "", "intent": {"name": intent, "confidence": confidence},
            "intent_ranking": ranking or [{"name": intent, "confidence": confidence}], "entities": list(entities)}


def test_entities_pair_by_exact_span():
    gold = [e.as_dict() for e in GOLD]
    found = [e for e in PREDICTED if e["extractor"] == "DIETClassifier"]
    targets, predictions = align_entities(gold, found)
    assert targets == ["size", "milk", "drink", NO_ENTITY, NO_ENTITY]
    assert predictions == ["size", NO_ENTITY, "size", "drink", "milk"]


def test_extractor_report_by_hand():
    message = Message(text=TEXT, intent="order", entities=GOLD)
    result = evaluate_entities("DIETClassifier", [message], [_parse("order", 0.9, entities=PREDICTED)])
    report = result.report
    assert set(report) == {"drink", "milk", "size", "accuracy", "micro avg", "macro avg", "weighted avg"}
    assert report["size"].pop("confused_with") == {}
    assert report["size"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1-score": 2 / 3, "support": 1})
    assert report["milk"]["precision"] == report["milk"]["recall"] == 0.0
    assert report["drink"]["confused_with"] == {"size": 1}
    # 1 hit of 4 predictions and 3 annotations.
    assert result.scores == pytest.approx({"precision": 0.25, "recall": 1 / 3, "f1_score": 2 / 7, "support": 3})
    assert report["micro avg"] == pytest.approx({"precision": 0.25, "recall": 1 / 3, "f1-score": 2 / 7, "support": 3})
    assert result.errors == [{
        "text": TEXT,
        "entities": [e.as_dict() for e in GOLD],
        "predicted_entities": [{k: e[k] for k in ("start", "end", "entity", "value")} for e in PREDICTED[:4]],
    }]


def test_exact_match_scores_are_the_benchmark_entity_scores():
    messages = [Message(text=TEXT, intent="order", entities=GOLD), Message(text="hi", intent="greet")]
    parses = [_parse("order", 0.9, entities=PREDICTED[:4]), _parse("greet", 0.8)]
    scores = evaluate_entities("DIETClassifier", messages, parses).scores
    benchmark = entity_report([[(e.start, e.end, e.entity) for e in m.entities] for m in messages], parses)
    assert (scores["precision"], scores["recall"], scores["f1_score"]) == pytest.approx(
        (benchmark["precision"], benchmark["recall"], benchmark["f1"]))


def test_intents_score_the_best_intent_behind_the_fallback():
    messages = [Message(text="hello", intent="greet"), Message(text="bye", intent="goodbye"),
                Message(text="hmm", intent="greet")]
    fallback = [{"name": "nlu_fallback", "confidence": 0.3}, {"name": "greet", "confidence": 0.25},
                {"name": "goodbye", "confidence": 0.2}]
    parses = [_parse("nlu_fallback", 0.3, fallback), _parse("greet", 0.6), _parse("greet", 0.9)]
    result = score_parses(messages, parses, [])
    assert [(p.predicted, p.confidence) for p in result.intents] == [("greet", 0.25), ("greet", 0.6), ("greet", 0.9)]
    assert result.intent_report["accuracy"] == pytest.approx(2 / 3)
    assert result.intent_report["goodbye"].pop("confused_with") == {"greet": 1}
    assert result.intent_report["goodbye"] == {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 1}
    assert result.intent_report["greet"]["precision"] == pytest.approx(2 / 3)
    assert result.intent_errors == [
        {"text": "bye", "intent": "goodbye", "intent_prediction": {"name": "greet", "confidence": 0.6}}]


def test_pretrained_extractors_and_the_synonym_mapper_are_not_scored():
    class Stub:
        roles = frozenset({"entity_extractor"})

        def __init__(self, name, config=None):
            self.name, self.config = name, config or {}

    pipeline = [Stub("DucklingEntityExtractor"), Stub("CRFEntityExtractor"), Stub("EntitySynonymMapper"),
                Stub("DIETClassifier", {"entity_recognition": False}), Stub("RegexEntityExtractor")]
    assert entity_extractors(pipeline) == ["CRFEntityExtractor", "RegexEntityExtractor"]


def test_response_selection_reads_the_selector_of_the_retrieval_intent():
    messages = [Message(text="what's your name", intent="faq", intent_response_key="faq/ask_name"),
                Message(text="are you a bot", intent="faq", intent_response_key="faq/ask_bot"),
                Message(text="hi", intent="greet")]

    def selected(key, confidence, selector="faq"):
        return {"all_retrieval_intents": ["faq"],
                selector: {"response": {"intent_response_key": key, "confidence": confidence}}}

    parses = [{**_parse("faq", 0.9), "response_selector": selected("faq/ask_name", 0.8)},
              {**_parse("faq", 0.9), "response_selector": selected("faq/ask_name", 0.6, selector="default")},
              _parse("greet", 0.9)]
    result = score_parses(messages, parses, [], responses=True)
    assert [(r.intent_response_key, r.predicted) for r in result.responses] == [
        ("faq/ask_name", "faq/ask_name"), ("faq/ask_bot", "faq/ask_name")]
    assert result.response_report["accuracy"] == 0.5
    assert result.response_report["faq/ask_bot"]["confused_with"] == {"faq/ask_name": 1}
    assert result.response_errors == [{"text": "are you a bot", "intent_response_key_target": "faq/ask_bot",
                                       "intent_response_key_prediction": {"name": "faq/ask_name", "confidence": 0.6}}]
    assert score_parses(messages, parses, []).response_report is None  # no selector in the pipeline
