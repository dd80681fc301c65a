"""Importing this module registers every NLU component under its config.yml name."""

from trainkit.nlu import (  # noqa: F401
    classifiers,
    count_vectors,
    extractors,
    language_model,
    lexical_syntactic,
    regex_featurizer,
    spacy_components,
    tokenizers,
)

# isort: split
from trainkit.nlu import crf_extractor, diet, response_selector  # noqa: F401
