"""CRFEntityExtractor learns entities (and roles) from token features."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from trainkit.data.training_data import Entity, Message, TrainingData
from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.engine.component import component_config
from trainkit.errors import ConfigError
from trainkit.nlu.batch import MessageBatch
from trainkit.nlu.crf_extractor import CRFEntityExtractor
from trainkit.nlu.tokenizers import WhitespaceTokenizer


def example(text, intent, *spans):
    entities = []
    for value, entity, role in spans:
        start = text.index(value)
        entities.append(Entity(start, start + len(value), value, entity, role))
    return Message.build(text, intent, entities)


def data() -> TrainingData:
    cities = ["Berlin", "Paris", "Rome", "Madrid", "London", "Vienna", "Oslo", "Lisbon"]
    examples = []
    for i, a in enumerate(cities):
        b = cities[(i + 3) % len(cities)]
        examples.append(example(f"fly from {a} to {b}", "fly", (a, "city", "from"), (b, "city", "to")))
        examples.append(example(f"weather in {a} please", "weather", (a, "city", None)))
        examples.append(example(f"book {i + 2} tickets to {b}", "fly", (str(i + 2), "count", None), (b, "city", "to")))
    examples.append(example("hello there", "greet"))
    return TrainingData(examples, lookup_tables=[{"name": "city", "elements": cities}])


def train(tmp_path: Path, config: dict | None = None) -> tuple[WhitespaceTokenizer, CRFEntityExtractor, dict]:
    td_dir = tmp_path / "td"
    ArtifactWriter(td_dir).json("training_data.json", data().as_dict())
    tokenizer = WhitespaceTokenizer(component_config(WhitespaceTokenizer, {}))
    tokenizer.process_training_data({"training_data": Artifact(td_dir)}, ArtifactWriter(tmp_path / "tok"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        merged = component_config(CRFEntityExtractor, {"name": "CRFEntityExtractor", **(config or {})})
    CRFEntityExtractor(merged).train(
        {"training_data": Artifact(td_dir), "tokens": Artifact(tmp_path / "tok"), "features": []},
        ArtifactWriter(tmp_path / "model"),
    )
    return tokenizer, CRFEntityExtractor.load(merged, Artifact(tmp_path / "model")), merged


def extract(tokenizer, model, texts):
    batch = MessageBatch(texts=list(texts))
    tokenizer.process(batch)
    model.process(batch)
    return batch.entities


def test_extracts_entities_with_roles(tmp_path):
    tokenizer, model, config = train(tmp_path)
    found = extract(tokenizer, model, ["fly from Oslo to Paris", "weather in Lisbon please", "book 3 tickets to Rome", "hello"])
    assert {(e["value"], e["entity"], e.get("role")) for e in found[0]} == {("Oslo", "city", "from"), ("Paris", "city", "to")}
    assert [(e["start"], e["end"], e["entity"]) for e in found[1]] == [(11, 17, "city")]
    assert {(e["value"], e["entity"]) for e in found[2]} == {("3", "count"), ("Rome", "city")}
    assert found[3] == []
    assert found[1][0]["extractor"] == "CRFEntityExtractor"
    assert 0 < found[1][0]["confidence_entity"] <= 1
    again = CRFEntityExtractor.load(config, Artifact(tmp_path / "model"))
    assert extract(tokenizer, again, ["fly from Oslo to Paris"]) == found[:1]


def test_without_entities_predicts_nothing(tmp_path):
    tokenizer, model, _ = train(tmp_path, {"features": [["low"], ["low", "suffix3"], ["low"]]})
    assert model.state["heads"]
    empty = CRFEntityExtractor(component_config(CRFEntityExtractor, {"name": "CRFEntityExtractor"}))
    assert extract(tokenizer, empty, ["fly from Oslo to Paris"]) == [[]]


def test_rejects_unknown_features():
    with pytest.raises(ConfigError):
        CRFEntityExtractor(component_config(CRFEntityExtractor, {"name": "CRFEntityExtractor", "features": [["nope"]]}))
