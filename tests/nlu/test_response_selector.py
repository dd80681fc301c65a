"""ResponseSelector picks the response key of retrieval-intent messages."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from trainkit.data.training_data import Message, TrainingData
from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.engine.component import component_config, get_component
from trainkit.nlu.batch import MessageBatch
from trainkit.nlu.response_selector import ResponseSelector

PIPELINE = [
    {"name": "WhitespaceTokenizer"},
    {"name": "CountVectorsFeaturizer"},
    {"name": "CountVectorsFeaturizer", "analyzer": "char_wb", "min_ngram": 1, "max_ngram": 3},
]


def data(with_retrieval: bool = True) -> TrainingData:
    examples = [Message.build(t, "greet") for t in ["hi", "hello there", "hey"]]
    if with_retrieval:
        faq = {
            "faq/ask_name": ["what is your name", "who are you", "tell me your name", "your name?"],
            "faq/ask_weather": ["how is the weather", "is it sunny", "will it rain", "weather today?"],
            "chitchat/ask_age": ["how old are you", "what is your age", "are you old"],
        }
        examples += [Message.build(t, key) for key, texts in faq.items() for t in texts]
    responses = {"utter_faq/ask_name": [{"text": "I am a bot"}], "utter_faq/ask_weather": [{"text": "Sunny"}]}
    return TrainingData(examples, responses=responses)


def train(tmp_path: Path, training_data: TrainingData, item: dict):
    td_dir = tmp_path / "td"
    ArtifactWriter(td_dir).json("training_data.json", training_data.as_dict())
    inputs = {"training_data": Artifact(td_dir)}
    steps, features = [], []
    for i, spec in enumerate(PIPELINE):
        cls = get_component(spec["name"])
        config = component_config(cls, spec)
        component = cls(config)
        if "tokenizer" in cls.roles:
            component.process_training_data(inputs, ArtifactWriter(tmp_path / f"tok{i}"))
            inputs["tokens"] = Artifact(tmp_path / f"tok{i}")
            steps.append(component)
        else:
            component.train(inputs, ArtifactWriter(tmp_path / f"m{i}"))
            loaded = cls.load(config, Artifact(tmp_path / f"m{i}"))
            loaded.process_training_data({**inputs, "model": Artifact(tmp_path / f"m{i}")}, ArtifactWriter(tmp_path / f"f{i}"))
            features.append(Artifact(tmp_path / f"f{i}"))
            steps.append(loaded)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = component_config(ResponseSelector, {"name": "ResponseSelector", **item})
    ResponseSelector(config).train({**inputs, "features": features}, ArtifactWriter(tmp_path / "model"))
    return steps, config


def select(steps, model, texts):
    batch = MessageBatch(texts=list(texts))
    for step in [*steps, model]:
        step.process(batch)
    return batch.response_selector


def test_picks_response_key_for_all_retrieval_intents(tmp_path):
    steps, config = train(tmp_path, data(), {"epochs": 60, "random_seed": 3})
    model = ResponseSelector.load(config, Artifact(tmp_path / "model"))
    results = select(steps, model, ["what's your name", "will it be sunny", "how old are you"])
    keys = [r["default"]["response"]["intent_response_key"] for r in results]
    assert keys == ["faq/ask_name", "faq/ask_weather", "chitchat/ask_age"]
    first = results[0]
    assert first["all_retrieval_intents"] == ["chitchat", "faq"]
    assert first["default"]["response"]["utter_action"] == "utter_faq/ask_name"
    assert first["default"]["response"]["responses"] == [{"text": "I am a bot"}]
    assert results[2]["default"]["response"]["responses"] is None
    ranking = first["default"]["ranking"]
    assert ranking[0]["intent_response_key"] == "faq/ask_name"
    assert sum(r["confidence"] for r in ranking) == pytest.approx(1.0)
    again = ResponseSelector.load(config, Artifact(tmp_path / "model"))
    assert select(steps, again, ["what's your name", "will it be sunny", "how old are you"]) == results


def test_retrieval_intent_filter(tmp_path):
    steps, config = train(tmp_path, data(), {"epochs": 30, "retrieval_intent": "faq"})
    model = ResponseSelector.load(config, Artifact(tmp_path / "model"))
    result = select(steps, model, ["how old are you"])[0]
    assert set(result) == {"all_retrieval_intents", "faq"}
    assert {r["intent_response_key"] for r in result["faq"]["ranking"]} == {"faq/ask_name", "faq/ask_weather"}


def test_no_retrieval_intents_trains_nothing(tmp_path):
    steps, config = train(tmp_path, data(with_retrieval=False), {"epochs": 5})
    assert (tmp_path / "model" / "model.json").is_file()
    model = ResponseSelector.load(config, Artifact(tmp_path / "model"))
    assert select(steps, model, ["hi"]) == [None]
