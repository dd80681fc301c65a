import importlib.util

import pytest

from trainkit.engine.component import component_config, get_component, registered_components
from trainkit.errors import ConfigError

SPACY = ["SpacyNLP", "SpacyTokenizer", "SpacyFeaturizer", "SpacyEntityExtractor"]


@pytest.mark.skipif(importlib.util.find_spec("transformers") is not None, reason="transformers is installed")
def test_language_model_featurizer_without_transformers():
    cls = get_component("LanguageModelFeaturizer")
    with pytest.raises(ConfigError, match="'transformers'"):
        cls(component_config(cls, {"model_name": "bert", "model_weights": "rasa/LaBSE"}))


def test_every_component_is_registered_with_explicit_version_and_defaults():
    expected = {
        "WhitespaceTokenizer", "CountVectorsFeaturizer", "RegexFeaturizer", "LexicalSyntacticFeaturizer",
        "LogisticRegressionClassifier", "KeywordIntentClassifier", "FallbackClassifier",
        "EntitySynonymMapper", "RegexEntityExtractor", "DucklingEntityExtractor", "LanguageModelFeaturizer",
        *SPACY,
    }
    registry = registered_components()
    assert expected <= set(registry)
    for name in expected:
        cls = registry[name]
        assert cls.name == name
        assert "version" in cls.__dict__
        assert isinstance(cls.defaults, dict)


def test_dotted_rasa_names_resolve():
    assert get_component("rasa.nlu.tokenizers.whitespace_tokenizer.WhitespaceTokenizer").name == "WhitespaceTokenizer"
