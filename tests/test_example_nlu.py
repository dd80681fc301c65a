"""Every example assistant trains its NLU with its own config and parses held-out
sentences (written for the example, never seen in training) correctly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import trainkit
from trainkit.data.nlu_reader import read_nlu_file
from trainkit.evaluation import evaluate_nlu

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ASSISTANTS = sorted(p.name for p in EXAMPLES.iterdir() if (p / "config.yml").is_file())


@pytest.fixture(scope="module", params=ASSISTANTS)
def trained(request, tmp_path_factory):
    target = tmp_path_factory.mktemp(request.param) / request.param
    shutil.copytree(EXAMPLES / request.param, target)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(target)
        result = trainkit.train_nlu("config.yml", "data", fixed_model_name="nlu")
    assert result.code == 0
    return target, trainkit.load_model(target / result.model)


def test_held_out_intents_and_entities(trained):
    target, model = trained
    report = evaluate_nlu(model, read_nlu_file(target / "tests" / "heldout_nlu.yml"))
    assert report["intent"]["accuracy"] >= 0.9, report
    assert report["entities"]["f1"] >= 0.7, report


def test_parse_result_has_rasa_shape(trained):
    _, model = trained
    result = model.parse("could I get a large oat milk latte")
    assert set(result) >= {"text", "intent", "intent_ranking", "entities"}
    assert result["intent"]["name"] == "order_drink"
    ranking = [r["confidence"] for r in result["intent_ranking"]]
    assert ranking == sorted(ranking, reverse=True)
    entities = {e["entity"]: e for e in result["entities"]}
    assert entities["size"]["value"] == "large"
    assert result["text"][entities["size"]["start"]:entities["size"]["end"]] == "large"
    assert {"start", "end", "value", "entity", "confidence_entity", "extractor"} <= set(entities["size"])


def test_synonyms_map_entity_values(trained):
    _, model = trained
    entities = model.parse("one flat white please")["entities"]
    assert any(e["entity"] == "drink" and e["value"] == "flat_white" for e in entities), entities
