import http.server
import json
import threading
import warnings

import pytest

from trainkit.data.training_data import Entity, Message, TrainingData
from trainkit.engine.component import component_config
from trainkit.nlu.batch import MessageBatch
from trainkit.nlu.extractors import (
    DucklingEntityExtractor,
    EntitySynonymMapper,
    RegexEntityExtractor,
)


def test_synonym_mapper_maps_case_insensitively_and_records_processor(runner):
    data = TrainingData(
        [Message.build("i live in NYC", "inform", [Entity(10, 13, "New York", "city")])],
        entity_synonyms={"big apple": "New York"},
    )
    (mapper,) = runner.train(data, [(EntitySynonymMapper, {})])
    assert mapper.synonyms == {"big apple": "New York", "nyc": "New York"}
    batch = MessageBatch(
        texts=["x"],
        entities=[[
            {"entity": "city", "start": 0, "end": 3, "value": "nyc", "extractor": "X"},
            {"entity": "city", "start": 4, "end": 13, "value": "Big Apple", "extractor": "X"},
            {"entity": "city", "start": 14, "end": 20, "value": "Berlin", "extractor": "X"},
        ]],
    )
    mapper.process(batch)
    values = [e["value"] for e in batch.entities[0]]
    assert values == ["New York", "New York", "Berlin"]
    assert batch.entities[0][0]["processors"] == ["EntitySynonymMapper"]
    assert "processors" not in batch.entities[0][2]
    reloaded = EntitySynonymMapper.load(mapper.config, runner.artifacts[0])
    assert reloaded.synonyms == mapper.synonyms


def test_conflicting_synonyms_warn(runner):
    data = TrainingData(
        [Message.build("in nyc", "inform", [Entity(3, 6, "NY", "city")])],
        entity_synonyms={"nyc": "New York"},
    )
    with pytest.warns(UserWarning, match="conflicting"):
        runner.train(data, [(EntitySynonymMapper, {})])


def entity_data():
    return TrainingData(
        [
            Message.build("my zip is 12345", "inform", [Entity(10, 15, "12345", "zipcode")]),
            Message.build("fly to Berlin", "inform", [Entity(7, 13, "Berlin", "city")]),
        ],
        regex_features=[{"name": "zipcode", "pattern": r"\d{5}"}, {"name": "not_entity", "pattern": "abc"}],
        lookup_tables=[{"name": "city", "elements": ["Berlin", "New York"]}],
    )


def test_regex_entity_extractor_spans(runner):
    (extractor,) = runner.train(entity_data(), [(RegexEntityExtractor, {})])
    assert [p.name for p in extractor.patterns] == ["zipcode", "city"]
    text = "from new york to berlin, zip 10115 abc"
    batch = runner.parse([extractor], [text])
    entities = batch.entities[0]
    assert entities == [
        {"entity": "zipcode", "start": 29, "end": 34, "value": "10115", "extractor": "RegexEntityExtractor"},
        {"entity": "city", "start": 5, "end": 13, "value": "new york", "extractor": "RegexEntityExtractor"},
        {"entity": "city", "start": 17, "end": 23, "value": "berlin", "extractor": "RegexEntityExtractor"},
    ]
    for e in entities:
        assert text[e["start"] : e["end"]] == e["value"]


def test_regex_entity_extractor_options(runner):
    (sensitive,) = runner.train(entity_data(), [(RegexEntityExtractor, {"case_sensitive": True})])
    assert [e["value"] for e in runner.parse([sensitive], ["berlin Berlin"]).entities[0]] == ["Berlin"]
    (no_lookup,) = runner.train(entity_data(), [(RegexEntityExtractor, {"use_lookup_tables": False})])
    assert [p.name for p in no_lookup.patterns] == ["zipcode"]
    (no_boundary,) = runner.train(entity_data(), [(RegexEntityExtractor, {"use_word_boundaries": False})])
    assert runner.parse([no_boundary], ["berliner"]).entities[0][0]["value"] == "berlin"
    (bounded,) = runner.train(entity_data(), [(RegexEntityExtractor, {})])
    assert runner.parse([bounded], ["berliner"]).entities[0] == []


def test_regex_entity_extractor_warns_without_patterns(runner):
    data = TrainingData([Message.build("hi", "greet")], regex_features=[{"name": "x", "pattern": "a"}])
    with pytest.warns(UserWarning, match="extract nothing"):
        (extractor,) = runner.train(data, [(RegexEntityExtractor, {})])
    assert runner.parse([extractor], ["a"]).entities == [[]]


class _Duckling(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802
        length = int(self.headers["Content-Length"])
        form = dict(p.split("=", 1) for p in self.rfile.read(length).decode().split("&"))
        _Duckling.received.append((self.path, form))
        body = json.dumps([
            {"body": "tomorrow", "start": 5, "end": 13, "dim": "time", "latent": False,
             "value": {"type": "value", "value": "2024-01-02T00:00:00.000Z", "grain": "day"}},
            {"body": "3 km", "start": 14, "end": 18, "dim": "distance", "latent": False,
             "value": {"type": "value", "value": 3, "unit": "kilometre"}},
        ]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_duckling_client_posts_form_and_converts_entities():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Duckling)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        config = component_config(
            DucklingEntityExtractor, {"url": url, "dimensions": ["time"], "locale": "de_DE", "timezone": "Europe/Berlin"}
        )
        extractor = DucklingEntityExtractor.load(config, None)
        batch = MessageBatch(texts=["meet tomorrow 3 km"])
        extractor.process(batch)
    finally:
        server.shutdown()
    path, form = _Duckling.received[-1]
    assert path == "/parse"
    assert form["locale"] == "de_DE" and form["tz"] == "Europe%2FBerlin" and form["text"] == "meet+tomorrow+3+km"
    assert "reftime" in form
    assert batch.entities[0] == [{
        "start": 5, "end": 13, "text": "tomorrow", "value": "2024-01-02T00:00:00.000Z", "confidence": 1.0,
        "additional_info": {"type": "value", "value": "2024-01-02T00:00:00.000Z", "grain": "day"},
        "entity": "time", "extractor": "DucklingEntityExtractor",
    }]


def test_duckling_unreachable_warns_once_and_extracts_nothing(monkeypatch):
    monkeypatch.delenv("RASA_DUCKLING_HTTP_URL", raising=False)
    config = component_config(DucklingEntityExtractor, {"url": "http://127.0.0.1:9", "timeout": 1})
    extractor = DucklingEntityExtractor.load(config, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            batch = MessageBatch(texts=["tomorrow", "today"])
            extractor.process(batch)
            assert batch.entities == [[], []]
    assert len([w for w in caught if "not reachable" in str(w.message)]) == 1
