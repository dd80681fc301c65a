"""The spaCy components on a pipeline built in the test (no downloaded model needed)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from trainkit.data.training_data import Message, TrainingData
from trainkit.engine.component import component_config, get_component
from trainkit.errors import ConfigError, TrainkitError
from trainkit.nlu.batch import read_tokens

pytest.importorskip("spacy")

from trainkit.nlu.spacy_components import (  # noqa: E402
    SpacyEntityExtractor,
    SpacyFeaturizer,
    SpacyNLP,
    SpacyTokenizer,
)
from trainkit.nlu.spacy_model import pipeline_digest  # noqa: E402

TEXTS = ["Hello, I am happy", "bye  Alice", "", "zzz qqq"]


def _data(texts=TEXTS):
    return TrainingData([Message.build(t, "greet") for t in texts if t] + [Message.build("", "greet")])


def test_tokenizer_gives_offsets_into_the_original_text_and_lemmas(runner, spacy_pipeline):
    nlp, tokenizer = runner.train(_data(), [(SpacyNLP, {"model": str(spacy_pipeline())}), (SpacyTokenizer, {})])
    batch = runner.parse([nlp, tokenizer], TEXTS)
    first = batch.tokens[0]
    assert [(t.text, t.start, t.end) for t in first] == [
        ("Hello", 0, 5), (",", 5, 6), ("I", 7, 8), ("am", 9, 11), ("happy", 12, 17)
    ]
    assert [t.lemma for t in first] == [None, None, None, "be", None]
    # whitespace runs are not tokens, and the text keeps its case
    assert [(t.text, t.start, t.end) for t in batch.tokens[1]] == [("bye", 0, 3), ("Alice", 5, 10)]
    assert batch.tokens[2] == []


def test_tokens_artifact_keeps_the_lemmas_for_later_nodes(runner, spacy_pipeline):
    runner.train(_data(), [(SpacyNLP, {"model": str(spacy_pipeline())}), (SpacyTokenizer, {})])
    tokens_artifact = sorted(runner.root.glob("*_SpacyTokenizer"))[0]
    from trainkit.engine.artifact import Artifact

    texts = [t for t in TEXTS if t]
    tokens = read_tokens(Artifact(tokens_artifact), texts)
    assert [t.lemma for t in tokens[0]] == [None, None, None, "be", None]
    assert [t.text for t in tokens[1]] == ["bye", "Alice"]


def test_tokenizer_applies_token_pattern_and_splits_intents(runner, spacy_pipeline):
    items = [(SpacyNLP, {"model": str(spacy_pipeline())}),
             (SpacyTokenizer, {"token_pattern": r"[a-z]+", "intent_tokenization_flag": True})]
    nlp, tokenizer = runner.train(_data(["hellobye-x"]), items)
    batch = runner.parse([nlp, tokenizer], ["hello_bye"])  # one spaCy token
    assert [(t.text, t.start, t.end) for t in batch.tokens[0]] == [("hello", 0, 5), ("bye", 6, 9)]
    assert tokenizer.split_label("mood_great") == ["mood", "great"]


def test_featurizer_sequence_rows_are_word_vectors_and_sentence_is_mean_of_known_words(runner, spacy_pipeline):
    items = [(SpacyNLP, {"model": str(spacy_pipeline())}), (SpacyTokenizer, {}), (SpacyFeaturizer, {})]
    components = runner.train(_data(), items)
    batch = runner.parse(components, ["Hello happy zzz", "qqq"])
    sequence = batch.sequence_features["SpacyFeaturizer"]
    sentence = batch.sentence_features["SpacyFeaturizer"]
    assert sequence.shape == (4, 4) and sentence.shape == (2, 4)
    np.testing.assert_allclose(sequence[0], [1.0, 0.0, 0.0, 0.5])  # lowercased before lookup
    np.testing.assert_allclose(sequence[2], 0.0)  # unknown word
    # unknown words do not dilute the mean; a message of unknown words is all zeros
    np.testing.assert_allclose(sentence[0], [0.5, 0.0, 0.5, 1.25])
    np.testing.assert_allclose(sentence[1], 0.0)


def test_featurizer_max_pooling_and_alias(runner, spacy_pipeline):
    items = [(SpacyNLP, {"model": str(spacy_pipeline())}), (SpacyTokenizer, {}),
             (SpacyFeaturizer, {"pooling": "max", "alias": "vectors"})]
    components = runner.train(_data(), items)
    batch = runner.parse(components, ["sad hello"])
    np.testing.assert_allclose(batch.sentence_features["vectors"][0], [1.0, 0.2, 0.0, 0.5])


def test_featurizer_training_features_equal_prediction_features(runner, spacy_pipeline):
    items = [(SpacyNLP, {"model": str(spacy_pipeline())}), (SpacyTokenizer, {}), (SpacyFeaturizer, {})]
    texts = ["Hello there, I am great", "bye bye"]
    components = runner.train(_data(texts), items)
    from trainkit.engine.artifact import Artifact
    from trainkit.nlu.batch import read_feature_sets

    (stored,) = read_feature_sets([Artifact(runner.features[0].path)])
    batch = runner.parse(components, texts)
    np.testing.assert_array_equal(stored.sentence, batch.sentence_features["SpacyFeaturizer"])
    np.testing.assert_array_equal(stored.sequence, batch.sequence_features["SpacyFeaturizer"])


def test_case_sensitive_lookup_misses_capitalised_words(runner, spacy_pipeline):
    items = [(SpacyNLP, {"model": str(spacy_pipeline()), "case_sensitive": True}), (SpacyTokenizer, {}),
             (SpacyFeaturizer, {}), (SpacyEntityExtractor, {})]
    components = runner.train(_data(), items)
    batch = runner.parse(components, ["Hello hello alice Alice"])
    np.testing.assert_allclose(batch.sequence_features["SpacyFeaturizer"][0], 0.0)
    np.testing.assert_allclose(batch.sequence_features["SpacyFeaturizer"][1], [1.0, 0.0, 0.0, 0.5])
    assert [(e["start"], e["value"]) for e in batch.entities[0]] == [(12, "alice")]


def test_entity_extractor_keeps_the_dimensions_asked_for(runner, spacy_pipeline):
    model = str(spacy_pipeline())
    everything = runner.train(_data(), [(SpacyNLP, {"model": model}), (SpacyEntityExtractor, {})])
    batch = runner.parse(everything, ["Bob flies to Berlin"])
    assert batch.entities[0] == [
        {"entity": "PERSON", "value": "bob", "start": 0, "end": 3, "confidence": None,
         "extractor": "SpacyEntityExtractor"},
        {"entity": "GPE", "value": "berlin", "start": 13, "end": 19, "confidence": None,
         "extractor": "SpacyEntityExtractor"},
    ]
    persons = runner.train(_data(), [(SpacyNLP, {"model": model}), (SpacyEntityExtractor, {"dimensions": ["PERSON"]})])
    batch = runner.parse(persons, ["Bob flies to Berlin", "nobody here"])
    assert [e["entity"] for e in batch.entities[0]] == ["PERSON"]
    assert batch.entities[1] == []


def test_spacy_nlp_records_the_pipeline_it_was_trained_with(runner, spacy_pipeline):
    path = spacy_pipeline(name="tiny", version="1.2.3")
    runner.train(_data(), [(SpacyNLP, {"model": str(path)})])
    record = runner.artifacts[0].json("spacy_pipeline.json")
    assert record["name"] == "en_tiny" and record["version"] == "1.2.3"
    assert record["digest"] == pipeline_digest(path)
    assert str(path) not in str(record)  # where it is installed is not part of the model


def test_loading_with_a_changed_pipeline_is_an_error(runner, spacy_pipeline):
    path = spacy_pipeline()
    (nlp,) = runner.train(_data(), [(SpacyNLP, {"model": str(path)})])
    vectors = path / "vocab" / "vectors"
    vectors.write_bytes(vectors.read_bytes()[:-4] + b"\x00\x00\x80\x3f")
    with pytest.raises(TrainkitError, match="differs from the one this model was trained with"):
        SpacyNLP.load(nlp.config, runner.artifacts[0])


def test_pipeline_digest_follows_the_vectors_and_ignores_python_caches(spacy_pipeline):
    path = spacy_pipeline()
    before = pipeline_digest(path)
    (path / "__pycache__").mkdir()
    (path / "__pycache__" / "x.pyc").write_bytes(b"cache")
    assert pipeline_digest(path) == before
    other = spacy_pipeline(vectors={"hello": [0.0, 1.0, 0.0, 0.0]})
    assert pipeline_digest(other) != before


@pytest.mark.parametrize("name", ["SpacyNLP", "SpacyTokenizer", "SpacyFeaturizer", "SpacyEntityExtractor"])
def test_without_spacy_every_component_names_the_package_and_the_alternative(monkeypatch, name):
    monkeypatch.setitem(sys.modules, "spacy", None)  # as if spaCy were not installed
    cls = get_component(name)
    config = component_config(cls, {"model": "en_core_web_md"} if name == "SpacyNLP" else {})
    if cls.provider:
        config[cls.provider] = {"model": "en_core_web_md", "case_sensitive": False}
    with pytest.raises(ConfigError, match="'spacy' package") as error:
        cls(config)
    message = str(error.value)
    assert "pip install 'trainkit[spacy]'" in message
    assert "WhitespaceTokenizer" in message and "CountVectorsFeaturizer" in message


def test_a_missing_model_names_it_and_how_to_install_it():
    config = component_config(SpacyNLP, {"model": "xx_not_a_pipeline_sm"})
    with pytest.raises(ConfigError, match="'xx_not_a_pipeline_sm'") as error:
        SpacyNLP(config)
    assert "python -m spacy download xx_not_a_pipeline_sm" in str(error.value)
    with pytest.raises(ConfigError, match="needs 'model'"):
        SpacyNLP(component_config(SpacyNLP, {}))


def test_a_directory_that_is_not_a_pipeline_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="not a spaCy pipeline"):
        SpacyNLP(component_config(SpacyNLP, {"model": str(tmp_path)}))
    with pytest.raises(ConfigError, match="directory '.*missing', which does not exist; save a pipeline there"):
        SpacyNLP(component_config(SpacyNLP, {"model": str(tmp_path / "missing")}))


def test_featurizer_refuses_a_pipeline_without_vectors_before_training(spacy_pipeline):
    config = component_config(SpacyFeaturizer, {})
    config["SpacyNLP"] = {"model": str(spacy_pipeline(vectors={})), "case_sensitive": False}
    with pytest.raises(ConfigError, match="no word vectors"):
        SpacyFeaturizer(config)


def _mood_data():
    from trainkit.data.training_data import Entity

    examples = []
    for text in ["i am happy", "hello i am happy", "happy"]:
        start = text.index("happy")
        examples.append(Message.build(text, "mood", [Entity(start, start + 5, "happy", "good_mood")]))
    examples += [Message.build(t, "other") for t in ["hello", "bye bye", "hi i am", "i am sad", "unhappy", "i am unhappy"]]
    return TrainingData(examples)


def test_crf_learns_from_the_dense_features_of_the_window(runner, spacy_pipeline):
    from trainkit.nlu.crf_extractor import CRFEntityExtractor

    dense_only = {"features": [[], ["text_dense_features"], []], "max_iterations": 100}
    items = [(SpacyNLP, {"model": str(spacy_pipeline())}), (SpacyTokenizer, {}), (SpacyFeaturizer, {}),
             (CRFEntityExtractor, dense_only)]
    components = runner.train(_mood_data(), items)
    # "great" and "hey" never occur in training: only their vectors (close to "happy"'s and
    # "hello"'s) tell them apart
    batch = runner.parse(components, ["great", "i am hey"])
    assert [(e["entity"], e["value"]) for e in batch.entities[0]] == [("good_mood", "great")]
    assert batch.entities[1] == []
    reloaded = CRFEntityExtractor.load(components[-1].config, runner.artifacts[-1])
    again = runner.parse([*components[:-1], reloaded], ["great", "i am hey"])
    assert again.entities == batch.entities
    words_only = runner.train(_mood_data(), [*items[:-1], (CRFEntityExtractor, {**dense_only, "features": [[], ["low"], []]})])
    assert runner.parse(words_only, ["great"]).entities[0] == []


def test_crf_refuses_dense_features_of_another_width(runner, spacy_pipeline):
    from trainkit.nlu.crf_extractor import CRFEntityExtractor

    items = [(SpacyNLP, {"model": str(spacy_pipeline())}), (SpacyTokenizer, {}), (SpacyFeaturizer, {}),
             (CRFEntityExtractor, {"max_iterations": 5})]
    components = runner.train(_mood_data(), items)
    with pytest.raises(ConfigError, match="trained on 4 dense feature columns"):
        runner.parse([components[0], components[1], components[3]], ["i am great"])


def test_tokenizer_passes_on_the_part_of_speech_tags(runner, spacy_pipeline):
    nlp, tokenizer = runner.train(_data(), [(SpacyNLP, {"model": str(spacy_pipeline())}), (SpacyTokenizer, {})])
    batch = runner.parse([nlp, tokenizer], ["Hello, I am happy"])
    assert [t.data.get("pos") for t in batch.tokens[0]] == ["UH", None, "PRP", "VBP", "JJ"]
    # and later nodes read them from the tokens artifact, as prediction sees them
    from trainkit.engine.artifact import Artifact

    stored = read_tokens(Artifact(sorted(runner.root.glob("*_SpacyTokenizer"))[0]), [t for t in TEXTS if t])
    assert [t.data.get("pos") for t in stored[0]] == ["UH", None, "PRP", "VBP", "JJ"]
    assert [t.data.get("pos") for t in stored[1]] == ["UH", "NNP"]


def test_lexical_syntactic_pos_features_come_from_the_spacy_tags(runner, spacy_pipeline):
    from trainkit.nlu.lexical_syntactic import LexicalSyntacticFeaturizer

    items = [(SpacyNLP, {"model": str(spacy_pipeline())}), (SpacyTokenizer, {}),
             (LexicalSyntacticFeaturizer, {"features": [["pos"], ["pos", "pos2"], []]})]
    components = runner.train(_data(["i am happy", "hello alice"]), items)
    names = components[-1].featurize(runner.parse(components[:-1], ["i am sad"])).feature_names
    assert {"0|pos|s:JJ", "0|pos2|s:VB", "0|pos|s:NNP", "-1|pos|s:VBP"} <= set(names)
    batch = runner.parse(components, ["i am sad", "bye"])
    rows = batch.sequence_features["LexicalSyntacticFeaturizer"].to_dense()
    column = {name: i for i, name in enumerate(names)}
    assert rows[2, column["0|pos|s:JJ"]] == 1 and rows[2, column["-1|pos|s:VBP"]] == 1  # "sad": JJ after VBP
    assert rows[1, column["0|pos2|s:VB"]] == 1
    assert rows[3].sum() == 2  # "bye": its pos UH and pos2 UH, and no token before it


def test_a_message_goes_through_the_spacy_pipeline_once(runner, spacy_pipeline, monkeypatch):
    items = [(SpacyNLP, {"model": str(spacy_pipeline())}), (SpacyTokenizer, {}), (SpacyFeaturizer, {}),
             (SpacyEntityExtractor, {})]
    components = runner.train(_data(), items)
    nlp = components[1].nlp
    made: list[str] = []
    ruled: list[str] = []
    make_doc = nlp.make_doc
    ruler = nlp.get_pipe("entity_ruler")
    monkeypatch.setattr(nlp, "make_doc", lambda text: made.append(text) or make_doc(text))
    original_call = type(ruler).__call__
    monkeypatch.setattr(type(ruler), "__call__", lambda self, doc: ruled.append(doc.text) or original_call(self, doc))
    batch = runner.parse(components, ["bob is happy", "hello alice"])
    assert made == ["bob is happy", "hello alice"]  # tokenized once, for the tokenizer and the extractor
    assert ruled == ["bob is happy", "hello alice"]
    assert [[e["value"] for e in entities] for entities in batch.entities] == [["bob"], ["alice"]]
    assert [t.data.get("pos") for t in batch.tokens[0]] == ["NNP", "VBZ", "JJ"]


def test_crf_learns_from_the_part_of_speech_tags(runner, spacy_pipeline):
    from trainkit.data.training_data import Entity
    from trainkit.nlu.crf_extractor import CRFEntityExtractor

    data = TrainingData([Message.build("i am happy", "mood", [Entity(5, 10, "happy", "feeling")]),
                         Message.build("hello alice", "greet"), Message.build("i am", "other")])
    items = [(SpacyNLP, {"model": str(spacy_pipeline())}), (SpacyTokenizer, {}),
             (CRFEntityExtractor, {"features": [[], ["pos"], []], "max_iterations": 50})]
    components = runner.train(data, items)
    # "sad" never occurs in training; its tag (JJ, like "happy") is all the CRF sees
    batch = runner.parse(components, ["bob is sad"])
    assert [(e["entity"], e["value"]) for e in batch.entities[0]] == [("feeling", "sad")]
