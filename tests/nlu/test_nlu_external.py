import importlib.util

import pytest

from trainkit.engine.component import component_config, get_component, registered_components
from trainkit.errors import ConfigError

SPACY = ["SpacyNLP", "SpacyTokenizer", "SpacyFeaturizer", "SpacyEntityExtractor"]


@pytest.mark.skipif(importlib.util.find_spec("spacy") is not None, reason="spacy is installed")
@pytest.mark.parametrize("name", SPACY)
def test_spacy_components_without_spacy_name_the_package(name):
    cls = get_component(name)
    with pytest.raises(ConfigError, match="'spacy'") as error:
        cls(component_config(cls, {}))
    assert "WhitespaceTokenizer" in str(error.value) and "CountVectorsFeaturizer" in str(error.value)


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
