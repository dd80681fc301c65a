import warnings

import numpy as np
import pytest

from trainkit.data.training_data import Message, TrainingData
from trainkit.engine.component import component_config
from trainkit.errors import ConfigError
from trainkit.nlu.batch import read_feature_sets
from trainkit.nlu.count_vectors import (
    CountVectorsFeaturizer,
    char_ngrams,
    char_wb_ngrams,
    word_ngrams,
)
from trainkit.nlu.tokenizers import WhitespaceTokenizer


def data(*texts):
    return TrainingData([Message.build(t, "intent") for t in texts])


def train_cv(runner, training_data, **options):
    _, cv = runner.train(training_data, [(WhitespaceTokenizer, {}), (CountVectorsFeaturizer, options)])
    return cv


def test_analyzers_follow_count_vectorizer_conventions():
    assert word_ngrams(["a", "b", "c"], 1, 2) == ["a", "b", "c", "a b", "b c"]
    assert char_ngrams("ab  c", 2, 2) == ["ab", "b ", " c"]
    assert char_wb_ngrams("ab", 1, 2) == [" ", "a", "b", " ", " a", "ab", "b "]
    # a padded word shorter than n yields itself once
    assert char_wb_ngrams("a", 2, 5) == [" a", "a ", " a "]


def test_word_vocabulary_is_sorted_and_counts_are_exact(runner):
    cv = train_cv(runner, data("Hello hello world", "world peace"))
    assert cv.vocabulary == ["hello", "peace", "world"]
    batch = runner.parse(runner.train(data("Hello hello world", "world peace"),
                                      [(WhitespaceTokenizer, {}), (CountVectorsFeaturizer, {})]),
                         ["hello big world hello"])
    sentence = batch.sentence_features["CountVectorsFeaturizer"].to_dense()
    np.testing.assert_array_equal(sentence, [[2, 0, 1]])
    sequence = batch.sequence_features["CountVectorsFeaturizer"].to_dense()
    np.testing.assert_array_equal(sequence, [[1, 0, 0], [0, 0, 0], [0, 0, 1], [1, 0, 0]])


def test_numbers_fold_into_one_feature(runner):
    cv = train_cv(runner, data("call 123", "call 99 now"))
    assert cv.vocabulary == ["__number__", "call", "now"]


def test_char_wb_vocabulary(runner):
    cv = train_cv(runner, data("ab"), analyzer="char_wb", min_ngram=1, max_ngram=2)
    assert cv.vocabulary == [" ", " a", "a", "ab", "b", "b "]


def test_char_analyzer_crosses_words(runner):
    cv = train_cv(runner, data("ab c"), analyzer="char", min_ngram=2, max_ngram=2)
    assert cv.vocabulary == [" c", "ab", "b "]


def test_word_bigrams(runner):
    cv = train_cv(runner, data("a b c"), min_ngram=1, max_ngram=2)
    assert cv.vocabulary == ["a", "a b", "b", "b c", "c"]


def test_min_df_max_df_and_max_features(runner):
    texts = ("apple banana", "apple cherry", "apple banana date")
    assert train_cv(runner, data(*texts), min_df=2).vocabulary == ["apple", "banana"]
    assert train_cv(runner, data(*texts), max_df=2).vocabulary == ["banana", "cherry", "date"]
    assert train_cv(runner, data(*texts), max_df=0.7).vocabulary == ["banana", "cherry", "date"]
    assert train_cv(runner, data(*texts), min_df=0.5).vocabulary == ["apple", "banana"]
    # most frequent first, ties broken alphabetically
    assert train_cv(runner, data(*texts), max_features=2).vocabulary == ["apple", "banana"]


def test_stop_words_and_lowercase(runner):
    assert train_cv(runner, data("The Cat", "the dog"), stop_words=["the"]).vocabulary == ["cat", "dog"]
    assert train_cv(runner, data("The Cat"), lowercase=False).vocabulary == ["Cat", "The"]


def test_oov_token_replaces_unknown_words(runner):
    training = data("i want pizza", "i want bla", "i want __oov__")
    components = runner.train(
        training,
        [(WhitespaceTokenizer, {}), (CountVectorsFeaturizer, {"OOV_token": "__oov__", "OOV_words": ["bla"]})],
    )
    vocab = components[1].vocabulary
    assert "bla" not in vocab and "__oov__" in vocab
    batch = runner.parse(components, ["i want sushi"])
    sentence = batch.sentence_features["CountVectorsFeaturizer"].to_dense()[0]
    assert sentence[vocab.index("__oov__")] == 1
    assert sentence.sum() == 3


def test_without_oov_token_unknown_words_are_dropped(runner):
    components = runner.train(data("i want pizza"), [(WhitespaceTokenizer, {}), (CountVectorsFeaturizer, {})])
    batch = runner.parse(components, ["i want sushi"])
    assert batch.sentence_features["CountVectorsFeaturizer"].to_dense().sum() == 2


def test_training_features_equal_prediction_features(runner):
    texts = ["Book a table for 4", "cancel it!", "what's the weather in Berlin?"]
    components = runner.train(
        data(*texts), [(WhitespaceTokenizer, {}), (CountVectorsFeaturizer, {"analyzer": "char_wb", "max_ngram": 3})]
    )
    (stored,) = read_feature_sets(runner.features)
    batch = runner.parse(components, texts)
    assert stored.sentence.equals(batch.sentence_features["CountVectorsFeaturizer"])
    assert stored.sequence.equals(batch.sequence_features["CountVectorsFeaturizer"])
    np.testing.assert_array_equal(stored.token_offsets, batch.token_offsets)


def test_two_featurizers_keep_separate_origins(runner):
    components = runner.train(
        data("hello there"),
        [(WhitespaceTokenizer, {}), (CountVectorsFeaturizer, {}), (CountVectorsFeaturizer, {"analyzer": "char"})],
    )
    batch = runner.parse(components, ["hello"])
    assert list(batch.sentence_features) == ["CountVectorsFeaturizer", "CountVectorsFeaturizer_2"]


@pytest.mark.parametrize(
    "options",
    [{"analyzer": "bytes"}, {"min_ngram": 3, "max_ngram": 2}, {"stop_words": "english"}, {"max_df": 1.5}],
)
def test_invalid_options_are_config_errors(options):
    with pytest.raises(ConfigError):
        CountVectorsFeaturizer(component_config(CountVectorsFeaturizer, options))


def test_unknown_option_is_warned():
    with pytest.warns(UserWarning, match="unknown option 'colour'"):
        component_config(CountVectorsFeaturizer, {"colour": "blue"})
    with pytest.raises(ConfigError, match="additional_vocabulary_size"):
        CountVectorsFeaturizer(component_config(CountVectorsFeaturizer, {"additional_vocabulary_size": {"text": -1}}))


def test_oov_words_without_token_warn():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        CountVectorsFeaturizer(component_config(CountVectorsFeaturizer, {"OOV_words": ["x"]}))
    assert any("OOV_words" in str(w.message) for w in caught)
