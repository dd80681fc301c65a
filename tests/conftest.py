"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The shared datasets folder beside the repository checkout (or TRAINKIT_SHARED_DATASETS).

    Tests that need real-world data skip instead of failing where the data is not present.
    """
    override = os.environ.get("TRAINKIT_SHARED_DATASETS")
    if override:
        location = Path(override)
    else:
        location = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"
    if not location.is_dir():
        pytest.skip(f"shared datasets not found at {location}")
    return location.resolve()


# A tiny English vocabulary for the spaCy tests: three directions of a 4-d space, so the
# vectors of greetings, goodbyes and moods are far apart and pooling is easy to check.
TINY_VECTORS: dict[str, list[float]] = {
    "hello": [1.0, 0.0, 0.0, 0.5],
    "hi": [0.9, 0.1, 0.0, 0.5],
    "hey": [0.8, 0.0, 0.2, 0.5],
    "bye": [0.0, 1.0, 0.0, -0.5],
    "goodbye": [0.1, 0.9, 0.0, -0.5],
    "later": [0.0, 0.8, 0.1, -0.5],
    "happy": [0.0, 0.0, 1.0, 2.0],
    "great": [0.1, 0.0, 0.9, 2.0],
    "sad": [0.0, 0.2, -1.0, -2.0],
    "unhappy": [0.0, 0.1, -0.9, -2.0],
    "i": [0.2, 0.2, 0.2, 0.0],
    "am": [0.1, 0.1, 0.1, 0.0],
}
TINY_PERSONS = ["alice", "bob"]
TINY_TAGS = {"UH": ["hello", "hi", "bye"], "PRP": ["i"], "VBP": ["am"], "VBZ": ["is"], "JJ": ["happy", "sad"],
             "NNP": ["alice", "bob"]}


@pytest.fixture
def spacy_pipeline(tmp_path_factory):
    """Builds a small spaCy pipeline directory: word vectors, lemmas for "am"/"is", tags
    for a few words (TINY_TAGS) and an entity ruler for person names (lowercase patterns, as SpacyNLP lowercases by default).

    Stands in for a downloaded model such as en_core_web_md, which CI cannot install.
    """
    spacy = pytest.importorskip("spacy")
    import numpy as np

    def build(vectors: dict[str, list[float]] | None = None, persons: list[str] | None = None,
              name: str = "tiny", version: str = "0.0.1") -> Path:
        nlp = spacy.blank("en")
        for word, vector in (TINY_VECTORS if vectors is None else vectors).items():
            nlp.vocab.set_vector(word, np.asarray(vector, dtype=np.float32))
        lemmas = nlp.add_pipe("attribute_ruler")
        lemmas.add([[{"LOWER": "am"}], [{"LOWER": "is"}]], {"LEMMA": "be"})
        for tag, words in TINY_TAGS.items():  # fine-grained tags, as a tagger would give
            lemmas.add([[{"LOWER": word}] for word in words], {"TAG": tag})
        ruler = nlp.add_pipe("entity_ruler")
        ruler.add_patterns([{"label": "PERSON", "pattern": p} for p in (TINY_PERSONS if persons is None else persons)]
                           + [{"label": "GPE", "pattern": "berlin"}])
        nlp.meta["name"] = name
        nlp.meta["version"] = version
        target = tmp_path_factory.mktemp("spacy") / f"en_{name}"
        nlp.to_disk(target)
        return target

    return build
