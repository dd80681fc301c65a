import numpy as np
import pytest

from trainkit.data.training_data import Entity, Message, TrainingData
from trainkit.engine.component import component_config
from trainkit.errors import ConfigError
from trainkit.nlu.batch import read_feature_sets
from trainkit.nlu.lexical_syntactic import LexicalSyntacticFeaturizer
from trainkit.nlu.regex_featurizer import RegexFeaturizer
from trainkit.nlu.tokenizers import WhitespaceTokenizer


def regex_data():
    return TrainingData(
        [Message.build("my zip is 12345", "inform", [Entity(10, 15, "12345", "zipcode")])],
        regex_features=[{"name": "zipcode", "pattern": r"\d{5}"}],
        lookup_tables=[{"name": "city", "elements": ["New York", "Berlin"]}],
    )


def test_regex_and_lookup_matches_mark_overlapping_tokens(runner):
    components = runner.train(regex_data(), [(WhitespaceTokenizer, {}), (RegexFeaturizer, {})])
    assert [p.name for p in components[1].patterns] == ["zipcode", "city"]
    batch = runner.parse(components, ["from new york to 10115", "nothing here", "berliner"])
    seq = batch.sequence_features["RegexFeaturizer"].to_dense()
    # tokens: from new york to 10115 | nothing here | berliner
    np.testing.assert_array_equal(seq, [[0, 0], [0, 0], [0, 0], [0, 0], [1, 0], [0, 0], [0, 0], [0, 0]])
    sentence = batch.sentence_features["RegexFeaturizer"].to_dense()
    np.testing.assert_array_equal(sentence, [[1, 0], [0, 0], [0, 0]])
    assert batch.feature_names["RegexFeaturizer"] == ["zipcode", "city"]


def test_case_insensitive_lookup_and_word_boundaries(runner):
    components = runner.train(
        regex_data(), [(WhitespaceTokenizer, {}), (RegexFeaturizer, {"case_sensitive": False})]
    )
    batch = runner.parse(components, ["from new york", "berliner"])
    seq = batch.sequence_features["RegexFeaturizer"].to_dense()
    np.testing.assert_array_equal(seq[:, 1], [0, 1, 1, 0])
    components = runner.train(
        regex_data(),
        [(WhitespaceTokenizer, {}), (RegexFeaturizer, {"case_sensitive": False, "use_word_boundaries": False})],
    )
    batch = runner.parse(components, ["berliner"])
    assert batch.sentence_features["RegexFeaturizer"].to_dense()[0, 1] == 1


def test_use_regexes_and_lookup_tables_switches(runner):
    components = runner.train(
        regex_data(), [(WhitespaceTokenizer, {}), (RegexFeaturizer, {"use_regexes": False})]
    )
    assert [p.name for p in components[1].patterns] == ["city"]
    components = runner.train(
        regex_data(), [(WhitespaceTokenizer, {}), (RegexFeaturizer, {"use_lookup_tables": False})]
    )
    assert [p.name for p in components[1].patterns] == ["zipcode"]


def test_regex_training_features_equal_prediction(runner):
    data = regex_data()
    components = runner.train(data, [(WhitespaceTokenizer, {}), (RegexFeaturizer, {})])
    (stored,) = read_feature_sets(runner.features)
    batch = runner.parse(components, ["my zip is 12345"])
    assert stored.sequence.equals(batch.sequence_features["RegexFeaturizer"])


def test_lexical_features_one_hot_window(runner):
    data = TrainingData([Message.build("Hello world", "greet"), Message.build("BIG 42", "x")])
    options = {"features": [["low"], ["BOS", "EOS", "title", "digit", "suffix2"], ["upper"]]}
    components = runner.train(data, [(WhitespaceTokenizer, {}), (LexicalSyntacticFeaturizer, options)])
    featurizer = components[1]
    names = sorted(featurizer.feature_map, key=featurizer.feature_map.__getitem__)
    batch = runner.parse(components, ["Hello 42"])
    seq = batch.sequence_features["LexicalSyntacticFeaturizer"].to_dense()
    active = [{names[j] for j in np.flatnonzero(row)} for row in seq]
    assert active[0] == {
        "0|BOS|b:True", "0|EOS|b:False", "0|title|b:True", "0|digit|b:False", "0|suffix2|s:lo",
        "1|upper|b:False",
    }
    assert active[1] == {
        "-1|low|b:False", "0|BOS|b:False", "0|EOS|b:True", "0|title|b:False", "0|digit|b:True", "0|suffix2|s:42",
    }
    assert "LexicalSyntacticFeaturizer" not in batch.sentence_features


def test_lexical_unseen_values_get_no_column(runner):
    data = TrainingData([Message.build("abc", "x")])
    components = runner.train(
        data, [(WhitespaceTokenizer, {}), (LexicalSyntacticFeaturizer, {"features": [["suffix3"]]})]
    )
    batch = runner.parse(components, ["xyz"])
    assert batch.sequence_features["LexicalSyntacticFeaturizer"].nnz == 0


@pytest.mark.parametrize("features", [[["low"], ["upper"]], [["shape"]], [["pos", "tag"]], "low"])
def test_lexical_invalid_features(features):
    with pytest.raises(ConfigError):
        LexicalSyntacticFeaturizer(component_config(LexicalSyntacticFeaturizer, {"features": features}))


def test_default_lexical_features_match_rasa():
    assert LexicalSyntacticFeaturizer.defaults["features"] == [
        ["low", "title", "upper"],
        ["BOS", "EOS", "low", "upper", "title", "digit"],
        ["low", "title", "upper"],
    ]


def test_lexical_pos_features_without_tags_warn_and_add_no_columns(runner):
    data = TrainingData([Message.build("hello there", "greet"), Message.build("bye now", "bye")])
    with pytest.warns(UserWarning, match=r"'pos', 'pos2' need part-of-speech tags.*SpacyTokenizer"):
        components = runner.train(data, [(WhitespaceTokenizer, {}),
                                          (LexicalSyntacticFeaturizer, {"features": [["pos"], ["low", "pos2"], []]})])
    assert all("pos" not in key for key in components[-1].feature_map)
    batch = runner.parse(components, ["hello now"])
    assert batch.sequence_features["LexicalSyntacticFeaturizer"].shape[0] == 2
