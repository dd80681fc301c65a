"""Finetuning NLU components: vocabularies with room for new words, warm-started
classifiers, extractors and response selectors."""

from __future__ import annotations

import json
import tarfile
import warnings

import pytest

import trainkit
from trainkit.engine.component import component_config
from trainkit.nlu.count_vectors import CountVectorsFeaturizer

CONFIG = """\
language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: RegexFeaturizer
  - name: LexicalSyntacticFeaturizer
  - name: CountVectorsFeaturizer
    additional_vocabulary_size:
      text: {room}
  - name: LogisticRegressionClassifier
    max_iter: 40
  - name: CRFEntityExtractor
    max_iterations: 30
  - name: DIETClassifier
    epochs: 20
    entity_recognition: false
    random_seed: 1
  - name: ResponseSelector
    epochs: 20
    random_seed: 1
"""

NLU = """\
version: "3.1"
nlu:
- intent: order
  examples: |
    - a [latte](drink) please
    - one [mocha](drink)
    - can I get a [flat white](drink)
    - I want an [espresso](drink)
    - [cappuccino](drink) for me
- intent: greet
  examples: |
    - hello
    - hi there
    - good morning
    - hey
- intent: faq/hours
  examples: |
    - when do you open
    - what are your opening hours
- intent: faq/wifi
  examples: |
    - do you have wifi
    - is there internet here
- regex: size
  examples: |
    - \\b(small|large)\\b
"""

DOMAIN = """\
version: "3.1"
intents: [order, greet, faq]
entities: [drink]
responses:
  utter_faq/hours:
  - text: We open at seven.
  utter_faq/wifi:
  - text: Yes, the password is on the menu.
"""

MORE = """\
- intent: order
  examples: |
    - a [cortado](drink) to go
    - could I have a [macchiato](drink)
- intent: greet
  examples: |
    - howdy partner
- intent: faq/wifi
  examples: |
    - any wireless network around
"""


def _write(path, room):
    (path / "config.yml").write_text(CONFIG.format(room=room))
    (path / "domain.yml").write_text(DOMAIN)
    (path / "data").mkdir(exist_ok=True)
    (path / "data" / "nlu.yml").write_text(NLU)


def _train(path, **kwargs):
    return trainkit.train_nlu(str(path / "config.yml"), [str(path / "data")], output=str(path / "models"),
                              domain=str(path / "domain.yml"), project_dir=str(path), **kwargs)


def _component(model, component, file):
    with tarfile.open(model) as tar:
        metadata = json.loads(tar.extractfile("metadata.json").read())
        node = next(n["name"] for n in metadata["train_schema"]["nodes"]
                    if n["component"] == component and n["fn"] == "train")
        return json.loads(tar.extractfile(f"components/{node}/{file}").read())


@pytest.fixture
def trained(tmp_path, monkeypatch):
    monkeypatch.delenv("TRAINKIT_CACHE_DIR", raising=False)

    def make(room):
        _write(tmp_path, room)
        model = tmp_path / _train(tmp_path).model
        with (tmp_path / "data" / "nlu.yml").open("a") as handle:
            handle.write(MORE)
        return tmp_path, model

    return make


def test_additional_vocabulary_size_is_an_accepted_option():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = component_config(CountVectorsFeaturizer, {"additional_vocabulary_size": {"text": 10}})
    assert CountVectorsFeaturizer(config).config["additional_vocabulary_size"] == {"text": 10}


def test_new_words_fill_the_room_left_for_them_and_columns_stay(trained):
    path, base = trained(room=40)
    before = _component(base, "CountVectorsFeaturizer", "vocabulary.json")
    assert before["size"] == len(before["vocabulary"]) + 40
    tuned = path / _train(path, model_to_finetune=str(base), finetuning_epoch_fraction=0.5).model
    after = _component(tuned, "CountVectorsFeaturizer", "vocabulary.json")
    assert after["size"] == before["size"]
    assert after["vocabulary"][: len(before["vocabulary"])] == before["vocabulary"]
    assert {"cortado", "macchiato", "howdy", "wireless"} <= set(after["vocabulary"][len(before["vocabulary"]):])
    model = trainkit.load_model(tuned)
    parsed = model.parse("a cortado to go")
    assert parsed["intent"]["name"] == "order"
    assert any(e["entity"] == "drink" for e in parsed["entities"])
    assert model.parse("any wireless network around")["response_selector"]["default"]["response"][
        "intent_response_key"] == "faq/wifi"


def test_without_room_new_words_are_ignored_with_a_warning(trained):
    path, base = trained(room=0)
    with pytest.warns(UserWarning, match=r"new terms do not fit the vocabulary.*additional_vocabulary_size"):
        result = _train(path, model_to_finetune=str(base), finetuning_epoch_fraction=0.5)
    after = _component(path / result.model, "CountVectorsFeaturizer", "vocabulary.json")
    assert after == _component(base, "CountVectorsFeaturizer", "vocabulary.json")


SINGLE = {
    "LogisticRegressionClassifier": ("max_iter", "  - name: CountVectorsFeaturizer\n  - name: LogisticRegressionClassifier\n"),
    "DIETClassifier": ("epochs", "  - name: CountVectorsFeaturizer\n  - name: DIETClassifier\n"
                                 "    entity_recognition: false\n    random_seed: 3\n"),
    "ResponseSelector": ("epochs", "  - name: CountVectorsFeaturizer\n  - name: ResponseSelector\n    random_seed: 3\n"),
    "CRFEntityExtractor": ("max_iterations", "  - name: CRFEntityExtractor\n    L1_c: 0.01\n"),
}


def _score(model, component, examples):
    """Training-set accuracy of what `component` predicts (intent, response key or entities)."""
    hits = 0
    for text, intent, key, entities in examples:
        parsed = model.parse(text)
        if component == "CRFEntityExtractor":
            hits += sorted(e["value"] for e in parsed["entities"]) == entities
        elif component == "ResponseSelector":
            hits += parsed["response_selector"]["default"]["response"]["intent_response_key"] == key
        else:
            hits += parsed["intent"]["name"] == intent
    return hits / len(examples)


@pytest.mark.parametrize("component", sorted(SINGLE))
def test_one_epoch_from_the_base_keeps_what_the_base_learned(tmp_path, monkeypatch, component):
    """One epoch (or optimiser iteration) from the base is as good as the base; one from
    scratch is not: the finetune really starts from the base's weights."""
    from trainkit.data.importer import load_project_paths
    from trainkit.data.paths import ProjectPaths

    monkeypatch.delenv("TRAINKIT_CACHE_DIR", raising=False)
    key, pipeline = SINGLE[component]
    config = "language: en\npipeline:\n  - name: WhitespaceTokenizer\n" + pipeline.replace(
        f"  - name: {component}\n", f"  - name: {component}\n    {key}: {{n}}\n")
    _write(tmp_path, 0)
    (tmp_path / "config.yml").write_text(config.format(n=60))
    base = tmp_path / _train(tmp_path).model
    data = load_project_paths(ProjectPaths.create(None, None, [tmp_path / "data"])).training_data()
    examples = [(m.text, m.intent, m.intent_response_key, sorted(e.value for e in m.entities))
                for m in data.nlu_examples if component != "ResponseSelector" or m.intent_response_key]
    base_score = _score(trainkit.load_model(base), component, examples)
    assert base_score >= 0.9
    tuned = tmp_path / _train(tmp_path, model_to_finetune=str(base), finetuning_epoch_fraction=1 / 60).model
    (tmp_path / "config.yml").write_text(config.format(n=1))
    scratch = tmp_path / _train(tmp_path).model
    tuned_score = _score(trainkit.load_model(tuned), component, examples)
    scratch_score = _score(trainkit.load_model(scratch), component, examples)
    assert tuned_score >= base_score - 0.1
    if component == "LogisticRegressionClassifier":
        # one L-BFGS step already separates this tiny data; the objective tells the two apart
        loss = {m: _component(m, component, "model.json")["loss"] for m in (base, tuned, scratch)}
        assert loss[tuned] < loss[scratch]
        assert loss[tuned] <= loss[base] * 1.5
    else:
        assert scratch_score < tuned_score
