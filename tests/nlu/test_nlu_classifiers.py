import numpy as np
import pytest

from trainkit.data.training_data import Message, TrainingData
from trainkit.engine.component import component_config
from trainkit.errors import ConfigError
from trainkit.nlu.batch import MessageBatch
from trainkit.nlu.classifiers import (
    FallbackClassifier,
    KeywordIntentClassifier,
    LogisticRegressionClassifier,
)
from trainkit.nlu.count_vectors import CountVectorsFeaturizer
from trainkit.nlu.regex_featurizer import RegexFeaturizer
from trainkit.nlu.tokenizers import WhitespaceTokenizer

TRAIN = {
    "greet": ["hello", "hi there", "hey", "good morning", "hello friend", "hi"],
    "goodbye": ["bye", "goodbye", "see you later", "bye bye", "see you", "good night"],
    "order_pizza": ["i want a pizza", "order pizza", "pizza please", "get me a pizza", "one pizza", "pizza now"],
}


def training_data():
    return TrainingData([Message.build(t, intent) for intent, texts in TRAIN.items() for t in texts])


PIPELINE = [
    (WhitespaceTokenizer, {}),
    (CountVectorsFeaturizer, {}),
    (CountVectorsFeaturizer, {"analyzer": "char_wb", "min_ngram": 1, "max_ngram": 4}),
]


@pytest.mark.parametrize("options", [{}, {"feature_scaling": "none", "C": 1.0}])
def test_logistic_regression_learns_separable_intents(runner, options):
    components = runner.train(training_data(), [*PIPELINE, (LogisticRegressionClassifier, options)])
    batch = runner.parse(components, ["hello there friend", "bye for now", "a large pizza"])
    assert [i["name"] for i in batch.intent] == ["greet", "goodbye", "order_pizza"]
    for intent, ranking in zip(batch.intent, batch.intent_ranking, strict=True):
        assert ranking[0] == intent
        assert [r["confidence"] for r in ranking] == sorted((r["confidence"] for r in ranking), reverse=True)
        assert sum(r["confidence"] for r in ranking) == pytest.approx(1.0)
    training_batch = runner.parse(components, [m.text for m in training_data().training_examples])
    accuracy = np.mean([i["name"] == m.intent for i, m in zip(training_batch.intent, training_data().training_examples, strict=True)])
    assert accuracy == 1.0


def test_logistic_regression_is_deterministic_and_round_trips(runner, tmp_path):
    first = runner.train(training_data(), [*PIPELINE, (LogisticRegressionClassifier, {})])
    weights_a = (runner.artifacts[-1].path / "weights.npz").read_bytes()
    second = runner.train(training_data(), [*PIPELINE, (LogisticRegressionClassifier, {})])
    weights_b = (runner.artifacts[-1].path / "weights.npz").read_bytes()
    assert weights_a == weights_b
    texts = ["hi", "pizza", "see you tomorrow", "unrelated words"]
    a = runner.parse(first, texts).parse_results()
    b = runner.parse(second, texts).parse_results()
    assert a == b
    # the trained instance itself predicts what the loaded one does
    loaded = LogisticRegressionClassifier.load(first[-1].config, runner.artifacts[-1])
    c = runner.parse([*first[:-1], loaded], texts).parse_results()
    assert c == a


def test_ranking_length_limits_ranking(runner):
    components = runner.train(training_data(), [*PIPELINE, (LogisticRegressionClassifier, {"ranking_length": 2})])
    batch = runner.parse(components, ["hello"])
    assert len(batch.intent_ranking[0]) == 2


def test_logistic_regression_uses_regex_features(runner):
    data = TrainingData(
        [Message.build("my number is 12345", "inform_zip"), Message.build("my number is abc", "other")] * 1,
        regex_features=[{"name": "zip", "pattern": r"\d{5}"}],
    )
    components = runner.train(
        data, [(WhitespaceTokenizer, {}), (RegexFeaturizer, {}), (LogisticRegressionClassifier, {})]
    )
    batch = runner.parse(components, ["it is 99999", "it is xyz"])
    assert [i["name"] for i in batch.intent] == ["inform_zip", "other"]


def test_unsupported_solver_is_a_config_error():
    with pytest.raises(ConfigError, match="solver"):
        LogisticRegressionClassifier(component_config(LogisticRegressionClassifier, {"solver": "liblinear"}))


def test_keyword_classifier(runner):
    data = TrainingData(
        [
            Message.build("hello", "greet"),
            Message.build("bye", "goodbye"),
            Message.build("ambiguous", "greet"),
            Message.build("ambiguous", "goodbye"),
        ]
    )
    with pytest.warns(UserWarning, match="ambiguous"):
        (sensitive,) = runner.train(data, [(KeywordIntentClassifier, {})])
    batch = runner.parse([sensitive], ["well hello there", "Bye now", "ambiguous", "hellothere"])
    assert batch.intent == [
        {"name": "greet", "confidence": 1.0},
        {"name": None, "confidence": 0.0},
        {"name": None, "confidence": 0.0},
        {"name": None, "confidence": 0.0},
    ]
    with pytest.warns(UserWarning, match="ambiguous"):
        (insensitive,) = runner.train(data, [(KeywordIntentClassifier, {"case_sensitive": False})])
    assert runner.parse([insensitive], ["Bye now"]).intent[0]["name"] == "goodbye"


def test_keyword_classifier_keeps_earlier_intent_when_nothing_matches():
    component = KeywordIntentClassifier(component_config(KeywordIntentClassifier, {}), {"hi": "greet"})
    batch = MessageBatch(texts=["nothing"], intent=[{"name": "other", "confidence": 0.9}])
    component.process(batch)
    assert batch.intent[0] == {"name": "other", "confidence": 0.9}


def fallback(**options):
    return FallbackClassifier(component_config(FallbackClassifier, options))


def batch_with(confidences):
    ranking = [{"name": f"i{k}", "confidence": c} for k, c in enumerate(confidences)]
    return MessageBatch(texts=["x"], intent=[dict(ranking[0])], intent_ranking=[ranking])


def test_fallback_below_threshold_uses_threshold_as_confidence():
    batch = batch_with([0.25, 0.05])
    fallback(threshold=0.3).process(batch)
    assert batch.intent[0] == {"name": "nlu_fallback", "confidence": 0.3}
    assert [r["name"] for r in batch.intent_ranking[0]] == ["nlu_fallback", "i0", "i1"]


def test_fallback_on_ambiguity():
    batch = batch_with([0.5, 0.45])
    fallback(threshold=0.3, ambiguity_threshold=0.1).process(batch)
    assert batch.intent[0]["name"] == "nlu_fallback"


def test_no_fallback_for_confident_clear_prediction():
    batch = batch_with([0.8, 0.1])
    fallback().process(batch)
    assert batch.intent[0] == {"name": "i0", "confidence": 0.8}
    assert len(batch.intent_ranking[0]) == 2


def test_fallback_defaults_match_rasa():
    assert FallbackClassifier.defaults == {"threshold": 0.3, "ambiguity_threshold": 0.1}
