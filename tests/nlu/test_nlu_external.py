

from trainkit.engine.component import get_component, registered_components

SPACY = ["SpacyNLP", "SpacyTokenizer", "SpacyFeaturizer", "SpacyEntityExtractor"]




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
