"""Rasa's spaCy components, on a spaCy pipeline installed beside trainkit.

`SpacyNLP` names the pipeline (`model`: a package such as en_core_web_md, or the path of
a saved pipeline directory) and whether text is lowercased before spaCy sees it
(`case_sensitive: false`, Rasa's default). The recipe hands its settings to every spaCy
component after it, which each load the pipeline once per process.

The pipeline is never copied into a model: the `SpacyNLP` node records its name, version
and content digest, and loading a model needs that very pipeline installed; a pipeline
whose content differs is an error, because the classifiers were trained on the features
of the old one and would silently get others. The tokenizer and featurizer nodes digest
the pipeline into their fingerprints (`resources_digest`), so replacing its vectors
retrains exactly what read them.

Token texts and offsets always refer to the original text; with `case_sensitive: false`
spaCy (and the vector look-up) sees the lowercased text, so lemmas and entity values
are lowercase, as in Rasa. Tokens carry spaCy's fine-grained tag (`tag_`) as their `pos`,
which LexicalSyntacticFeaturizer's `pos` and `pos2` features read.

A message goes through the spaCy pipeline once: the documents of a batch are kept on it
(`MessageBatch.shared`), and a component that needs a pipeline component an earlier one
skipped (the entity extractor needs `ner`, the tokenizer does not) runs only that one on
the documents already made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.engine.component import ENTITY_EXTRACTOR, PROVIDER, Component, Inputs, register
from trainkit.engine.options import Choice, OfType, Option, strings
from trainkit.errors import ConfigError, TrainkitError
from trainkit.nlu.base import Featurizer, NLUComponent, Tokenizer
from trainkit.nlu.batch import POS, FeatureSet, MessageBatch, Token
from trainkit.nlu.spacy_model import (
    PipelineIdentity,
    declared_vector_width,
    load_pipeline,
    locate_pipeline,
    pipeline_digest,
    pipeline_identity,
    require_spacy,
)

SPACY_NLP = "SpacyNLP"
IDENTITY_FILE = "spacy_pipeline.json"
# Pipeline components whose output (entities, dependency parses) tokens do not use.
_NOT_FOR_TOKENS = ("ner", "parser")


def spacy_text(text: str, case_sensitive: bool) -> str:
    """The text spaCy sees: lowercased unless case-sensitive, and never with other
    offsets than the original (the rare letters whose lowercase is longer stay as they are)."""
    if case_sensitive:
        return text
    lowered = text.lower()
    return lowered if len(lowered) == len(text) else text


@dataclass
class _SharedDocs:
    """A batch's spaCy documents and the pipeline components that have run on them."""

    docs: list[Any]
    applied: set[str] = field(default_factory=set)


class _SpacyUser(NLUComponent):
    """What every spaCy component shares: settings, the pipeline's place and its digest."""

    provider: ClassVar[str] = SPACY_NLP

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        require_spacy(self.name)
        self.settings = self.spacy_settings(config)
        self.root = locate_pipeline(self.settings.get("model"), self.name)
        self._nlp: Any = None

    @classmethod
    def spacy_settings(cls, config: dict[str, Any]) -> dict[str, Any]:
        """SpacyNLP's merged config, as the recipe passed it along."""
        settings = config.get(SPACY_NLP)
        if not isinstance(settings, dict):
            raise ConfigError(f"{cls.name} needs {SPACY_NLP} earlier in the pipeline")
        return settings

    @classmethod
    def resources_digest(cls, config: dict[str, Any]) -> str | None:
        return pipeline_digest(locate_pipeline(cls.spacy_settings(config).get("model"), cls.name))

    @property
    def case_sensitive(self) -> bool:
        """Whether spaCy sees the text as written."""
        return bool(self.settings.get("case_sensitive"))

    @property
    def nlp(self) -> Any:
        """The loaded spaCy `Language` (shared by every component of this process)."""
        if self._nlp is None:
            self._nlp = load_pipeline(self.root)
        return self._nlp

    def docs(self, texts: list[str], disable: tuple[str, ...] = ()) -> list[Any]:
        """spaCy documents of the texts, lowercased unless case-sensitive."""
        skipped = [name for name in disable if name in self.nlp.pipe_names]
        return list(self.nlp.pipe([spacy_text(t, self.case_sensitive) for t in texts], disable=skipped))

    def batch_docs(self, batch: MessageBatch, disable: tuple[str, ...] = ()) -> list[Any]:
        """The batch's documents, made once per batch and pipeline and shared by the
        spaCy components processing it; pipeline components an earlier caller disabled
        and this one needs are run now, in pipeline order, on those documents."""
        key = f"spacy:{self.root.resolve()}:{self.case_sensitive}"
        wanted = [name for name in self.nlp.pipe_names if name not in disable]
        shared = batch.shared.get(key)
        if not isinstance(shared, _SharedDocs) or len(shared.docs) != len(batch.texts):
            shared = batch.shared[key] = _SharedDocs(self.docs(batch.texts, disable), set(wanted))
            return shared.docs
        for name in wanted:
            if name not in shared.applied:
                component = self.nlp.get_pipe(name)
                shared.docs = list(component.pipe(shared.docs)) if hasattr(component, "pipe") \
                    else [component(doc) for doc in shared.docs]
                shared.applied.add(name)
        return shared.docs


@register
class SpacyNLP(_SpacyUser):
    """Names the spaCy pipeline the other spaCy components use, and records it in the model."""

    name = "SpacyNLP"
    version = "1"
    roles: ClassVar[frozenset[str]] = frozenset({PROVIDER})
    trainable = True
    provider: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {"model": Option(None, OfType((str,), null=True)), "case_sensitive": False}

    @classmethod
    def spacy_settings(cls, config: dict[str, Any]) -> dict[str, Any]:
        return config

    def train(self, inputs: Inputs, out: ArtifactWriter) -> None:
        """Record which pipeline this model is built with (after checking spaCy loads it)."""
        self.nlp  # noqa: B018 - a pipeline spaCy cannot load fails here, naming it
        out.json(IDENTITY_FILE, pipeline_identity(self.root).as_dict())

    @classmethod
    def load(cls, config: dict[str, Any], model: Artifact | None) -> Component:
        recorded = PipelineIdentity(**model.json(IDENTITY_FILE)) if model is not None else None
        described = recorded.describe() if recorded is not None else config.get("model")
        try:
            component = cls(config)
        except ConfigError as exc:
            raise TrainkitError(f"this model was trained with the spaCy pipeline {described}: {exc.problem.message}") from None
        if recorded is not None and pipeline_digest(component.root) != recorded.digest:
            raise TrainkitError(
                f"the spaCy pipeline at '{component.root}' differs from the one this model was trained with "
                f"({described}, digest {recorded.digest}); install that pipeline or retrain the model"
            )
        return component

    def process(self, batch: MessageBatch) -> None:
        """Nothing to add: each spaCy component runs the pipeline it needs itself."""


@register
class SpacyTokenizer(_SpacyUser, Tokenizer):
    """spaCy's tokens, with their lemmas and part-of-speech tags; whitespace tokens are
    dropped, as Rasa does."""

    name = "SpacyTokenizer"
    version = "2"
    defaults: ClassVar[dict[str, Any]] = {
        "intent_tokenization_flag": False,
        "intent_split_symbol": "_",
        "token_pattern": Option(None, OfType((str,), null=True)),
    }

    def _tokens(self, text: str, doc: Any) -> list[Token]:
        tokens = []
        for word in doc:
            if not word.text.strip():
                continue
            start = word.idx
            end = start + len(word.text)
            tokens.append(Token(text[start:end], start, end, word.lemma_ or None, {POS: word.tag_} if word.tag_ else {}))
        return self.apply_token_pattern(tokens)

    def tokenize(self, text: str) -> list[Token]:
        return self.tokenize_all([text])[0]

    def tokenize_all(self, texts: list[str]) -> list[list[Token]]:
        """Tokens of many texts, through spaCy in batches."""
        return [self._tokens(text, doc) for text, doc in zip(texts, self.docs(texts, _NOT_FOR_TOKENS), strict=True)]

    def process(self, batch: MessageBatch) -> None:
        docs = self.batch_docs(batch, _NOT_FOR_TOKENS)
        batch.tokens = [self._tokens(text, doc) for text, doc in zip(batch.texts, docs, strict=True)]


@register
class SpacyFeaturizer(_SpacyUser, Featurizer):
    """The pipeline's word vectors: one row per token (sequence), and their mean or
    maximum over the words that have a vector (sentence).

    Vectors are looked up per token of the pipeline's tokenizer (any tokenizer works;
    Rasa needs SpacyTokenizer), lowercased unless case-sensitive. A message none of whose
    words has a vector gets a zero sentence vector.
    """

    name = "SpacyFeaturizer"
    version = "1"
    defaults: ClassVar[dict[str, Any]] = {
        "pooling": Option("mean", Choice(("mean", "max"))),
        "alias": Option(None, OfType((str,), null=True)),
    }

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        if declared_vector_width(self.root) == 0:  # known from meta.json before anything trains
            raise self._no_vectors()
        self._vectors: dict[str, np.ndarray] = {}

    def _no_vectors(self) -> ConfigError:
        return ConfigError(
            f"{self.name}: the spaCy pipeline '{self.settings.get('model')}' has no word vectors; use a "
            "pipeline with vectors (such as en_core_web_md, not en_core_web_sm)"
        )

    def _vector(self, word: str) -> np.ndarray:
        key = spacy_text(word, self.case_sensitive)
        vector = self._vectors.get(key)
        if vector is None:
            vector = self._vectors[key] = np.asarray(self.nlp.vocab.get_vector(key), dtype=np.float64)
        return vector

    def featurize(self, batch: MessageBatch) -> FeatureSet:
        width = int(self.nlp.vocab.vectors_length)
        if width == 0:
            raise self._no_vectors()
        offsets = batch.token_offsets
        sequence = np.zeros((int(offsets[-1]), width))
        row = 0
        for tokens in batch.tokens:
            for token in tokens:
                sequence[row] = self._vector(token.text)
                row += 1
        sentence = np.zeros((len(batch.tokens), width))
        pool = np.max if self.config["pooling"] == "max" else np.mean
        for i in range(len(batch.tokens)):
            rows = sequence[offsets[i] : offsets[i + 1]]
            known = rows[np.any(rows != 0.0, axis=1)]
            if len(known):
                sentence[i] = pool(known, axis=0)
        return FeatureSet(self.origin, sentence, sequence, offsets)


@register
class SpacyEntityExtractor(_SpacyUser):
    """The pipeline's named entities (`doc.ents`), only the labels in `dimensions` if given."""

    name = "SpacyEntityExtractor"
    version = "1"
    roles: ClassVar[frozenset[str]] = frozenset({ENTITY_EXTRACTOR})
    defaults: ClassVar[dict[str, Any]] = {"dimensions": Option(None, strings(1_000, null=True))}

    def process(self, batch: MessageBatch) -> None:
        dimensions = self.config["dimensions"]
        for entities, doc in zip(batch.entities, self.batch_docs(batch), strict=True):
            for span in doc.ents:
                if dimensions and span.label_ not in dimensions:
                    continue
                entities.append({"entity": span.label_, "value": span.text, "start": span.start_char,
                                 "end": span.end_char, "confidence": None, "extractor": self.name})

