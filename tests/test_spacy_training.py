"""A project whose pipeline reads a spaCy pipeline: trains, parses, and knows when the
spaCy pipeline on disk is not the one a node or a model was built with."""

from __future__ import annotations

import logging
import shutil
import warnings
from pathlib import Path

import pytest

import trainkit
from trainkit.errors import TrainkitError

pytest.importorskip("spacy")

NLU = """\
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hello
    - hi there
    - hey
    - hello [Alice](PERSON)
- intent: goodbye
  examples: |
    - bye
    - goodbye
    - see you later
    - bye [Bob](PERSON)
- intent: mood_great
  examples: |
    - I am happy
    - I am great
    - great
- intent: mood_unhappy
  examples: |
    - I am sad
    - unhappy
    - sad
"""

CONFIG = """\
language: en
pipeline:
  - name: SpacyNLP
    model: {model}
  - name: SpacyTokenizer
  - name: SpacyFeaturizer
  - name: CountVectorsFeaturizer
  - name: DIETClassifier
    epochs: 30
    entity_recognition: false
  - name: SpacyEntityExtractor
    dimensions: [PERSON]
policies: []
"""
SPACY_NODES = {"provide_SpacyNLP0", "run_SpacyTokenizer1", "run_SpacyFeaturizer2"}


@pytest.fixture
def project(tmp_path, monkeypatch, spacy_pipeline):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRAINKIT_CACHE_DIR", raising=False)
    pipeline = spacy_pipeline()
    (tmp_path / "config.yml").write_text(CONFIG.format(model=pipeline))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "nlu.yml").write_text(NLU)
    return pipeline


def _train(**kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return trainkit.train(None, "config.yml", "data", **kwargs)


def _stale(result):
    return {n: r["reason"] for n, r in result.dry_run_results.items() if r["status"] != "up to date"}


def test_trains_and_parses_with_the_spacy_pipeline(project):
    result = _train()
    assert result.code == 0 and result.model
    model = trainkit.load_model(result.model)
    parsed = model.parse("hello alice")
    assert parsed["intent"]["name"] == "greet"
    assert parsed["entities"] == [{"entity": "PERSON", "value": "alice", "start": 6, "end": 11,
                                   "confidence": None, "extractor": "SpacyEntityExtractor"}]
    assert model.parse("i am so happy")["intent"]["name"] == "mood_great"
    assert model.parse("so sad")["intent"]["name"] == "mood_unhappy"
    assert _stale(_train(dry_run=True)) == {}


def test_changed_vectors_make_exactly_the_spacy_readers_stale(project, caplog):
    _train()
    rebuilt = _rebuilt(project)
    shutil.rmtree(project)
    shutil.copytree(rebuilt, project)
    stale = _stale(_train(dry_run=True))
    assert set(stale) >= SPACY_NODES and "package" in stale
    assert stale["run_SpacyTokenizer1"] == "pretrained resources of SpacyTokenizer changed"
    assert stale["provide_SpacyNLP0"] == "pretrained resources of SpacyNLP changed"
    assert "nlu_training_data_provider" not in stale
    caplog.clear()  # only this build's log (an earlier test may have left DEBUG on)
    with caplog.at_level(logging.DEBUG, logger="trainkit"):
        _train()
    ran = {m.split()[1] for m in caplog.messages if m.startswith("ran ")}
    # the tokens did not change with the vectors, so the count vectors stay cached
    assert SPACY_NODES <= ran and "train_DIETClassifier4" in ran
    assert "train_CountVectorsFeaturizer3" not in ran
    assert _stale(_train(dry_run=True)) == {}


def _rebuilt(path):
    """The same pipeline with one vector changed, built beside the original."""
    import numpy as np
    import spacy

    nlp = spacy.load(path)
    nlp.vocab.set_vector("hello", np.asarray([0.0, 0.0, 0.0, 9.0], dtype=np.float32))
    target = path.parent / "rebuilt"
    nlp.to_disk(target)
    return target


def test_a_model_refuses_to_load_without_its_pipeline_or_with_another(project):
    result = _train()
    saved = project.parent / "saved"
    shutil.copytree(project, saved)
    shutil.copytree(_rebuilt(project), project, dirs_exist_ok=True)
    with pytest.raises(TrainkitError, match="differs from the one this model was trained with"):
        trainkit.load_model(result.model)
    shutil.rmtree(project)
    with pytest.raises(TrainkitError, match="trained with the spaCy pipeline en_tiny 0.0.1: .* does not exist"):
        trainkit.load_model(result.model)
    shutil.copytree(saved, project)
    assert trainkit.load_model(result.model).parse("bye")["intent"]["name"] == "goodbye"


def test_spacy_components_need_spacy_nlp_earlier(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yml").write_text("language: en\npipeline:\n  - name: SpacyTokenizer\npolicies: []\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "nlu.yml").write_text(NLU)
    with pytest.raises(TrainkitError, match="config.yml:3: .*SpacyTokenizer needs SpacyNLP earlier"):
        trainkit.train(None, "config.yml", "data")


def test_without_spacy_training_stops_at_the_config_line(project, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "spacy", None)  # as if spaCy were not installed
    with pytest.raises(TrainkitError, match="config.yml:3: .*SpacyNLP needs the 'spacy' package") as error:
        trainkit.train(None, "config.yml", "data")
    assert "pip install 'trainkit[spacy]'" in str(error.value)
    assert not Path("models").exists()
