"""Cross-validation: stratified folds, NLU files written back faithfully, and folds
trained through the project's cache."""

from __future__ import annotations

import json
import warnings
from collections import Counter

import pytest

from trainkit.data.nlu_reader import read_nlu_file
from trainkit.data.nlu_writer import write_nlu_file
from trainkit.evaluation.cross_validation import stratified_folds
from trainkit.evaluation.project_test import run_cross_validation

NLU = """\
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hello there
    - hi
    - hey you
    - good morning
- intent: order
  examples: |
    - a [large](size) [latte](drink) please
    - one [flat white]{"entity": "drink", "value": "flat_white"}
    - [small](size) [mocha](drink) for me
    - can I have a [tea](drink)
- intent: faq/hours
  examples: |
    - when do you open
    - what are your hours
- synonym: oat
  examples: |
    - oat milk
- regex: size
  examples: |
    - (small|large)
- lookup: drink
  examples: |
    - latte
    - mocha
"""

CONFIG = """\
language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
  - name: LogisticRegressionClassifier
  - name: RegexEntityExtractor
"""


def test_folds_spread_every_intent_evenly_and_are_the_same_each_time():
    intents = ["a"] * 5 + ["b"] * 3 + ["c"] * 4
    folds = stratified_folds(intents, 3)
    assert sorted(i for fold in folds for i in fold) == list(range(12))
    assert [len(fold) for fold in folds] == [4, 4, 4]
    counts = [Counter(intents[i] for i in fold) for fold in folds]
    for intent in "abc":
        per_fold = [c[intent] for c in counts]
        assert max(per_fold) - min(per_fold) <= 1, (intent, per_fold)
    assert stratified_folds(intents, 3) == folds
    assert stratified_folds(intents, 3, seed=1) != folds


def test_written_nlu_file_reads_back_as_the_same_data(tmp_path):
    source = tmp_path / "nlu.yml"
    source.write_text(NLU)
    data = read_nlu_file(source)
    again = read_nlu_file(write_nlu_file(data, tmp_path / "copy.yml"))
    assert again.as_dict() == data.as_dict()


def stored_entries(cache):
    """The cache's stored files (its SQLite index and journal files come and go)."""
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file() and "index.sqlite" not in p.name)


def test_cross_validation_tests_every_example_once_and_reuses_the_cache(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRAINKIT_CACHE_DIR", raising=False)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "nlu.yml").write_text(NLU)
    (tmp_path / "config.yml").write_text(CONFIG)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = run_cross_validation("config.yml", ["data"], folds=2, out="results", plots=False)
        cached = stored_entries(tmp_path / ".trainkit" / "cache")
        assert cached  # the folds trained into the project's cache
        again = run_cross_validation("config.yml", ["data"], folds=2, out="results", plots=False)
    assert stored_entries(tmp_path / ".trainkit" / "cache") == cached  # nothing new
    assert len(run.nlu.intents) == 10  # each example tested once, in the fold that held it out
    assert sorted(p.text for p in run.nlu.intents) == sorted(m.text for m in read_nlu_file("data/nlu.yml").nlu_examples)
    assert [p.predicted for p in again.nlu.intents] == [p.predicted for p in run.nlu.intents]
    scores = json.loads((tmp_path / "results" / "cross_validation_report.json").read_text())
    assert scores["folds"] == 2
    accuracy = scores["intent"]["test"]["accuracy"]
    assert len(accuracy["folds"]) == 2
    assert accuracy["mean"] == pytest.approx(sum(accuracy["folds"]) / 2)
    assert accuracy["std"] == pytest.approx(abs(accuracy["folds"][0] - accuracy["folds"][1]) / 2)
    assert scores["intent"]["train"]["accuracy"]["mean"] >= accuracy["mean"]
    assert set(scores["entities"]) == {"RegexEntityExtractor"}
    assert (tmp_path / "results" / "intent_report.json").is_file()
    assert (tmp_path / "results" / "RegexEntityExtractor_report.json").is_file()


def test_written_fold_files_keep_characters_beyond_the_basic_plane(tmp_path):
    from trainkit.data.training_data import Message, TrainingData

    data = TrainingData([Message.build("I like coffee \U0001F440 but how much is left?", "check_balance"),
                         Message.build("hello \u00e9t\u00e9", "greet")])
    again = read_nlu_file(write_nlu_file(data, tmp_path / "fold.yml"))
    assert sorted(m.text for m in again.nlu_examples) == sorted(m.text for m in data.nlu_examples)
