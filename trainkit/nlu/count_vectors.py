"""CountVectorsFeaturizer: bag-of-words / bag-of-character-n-gram counts.

Options follow Rasa 3.6, whose featurizer wraps scikit-learn's CountVectorizer; the
analyzers below reproduce that vectorizer's documented behaviour (word tokens matching
`\\b\\w+\\b`, character n-grams over whitespace-normalised text, `char_wb` n-grams of each
word padded with one space on either side, document-frequency pruning, a vocabulary in
sorted order) so features mean the same thing as in a Rasa model.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import numpy as np

from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.engine.component import Component, Inputs, register
from trainkit.engine.graph import BASE_MODEL
from trainkit.engine.options import AnyOf, Float, Int, MapOf, OfType, Option, strings
from trainkit.errors import ConfigError, TrainkitError
from trainkit.ml.sparse import CSR
from trainkit.nlu.base import Featurizer
from trainkit.nlu.batch import FeatureSet, MessageBatch, Token, training_batch

VOCABULARY_FILE = "vocabulary.json"
MAX_ADDITIONAL = 10_000_000
ANALYZERS = ("word", "char", "char_wb")
NUMBER_TOKEN = "__NUMBER__"
_NUMBER = re.compile(r"\b[0-9]+\b")
_WORD = re.compile(r"\b\w+\b")
_MULTI_SPACE = re.compile(r"\s\s+")


def strip_accents(text: str, mode: str | None) -> str:
    """Remove accents the way the `strip_accents` option names: 'ascii' or 'unicode'."""
    if not mode:
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    if mode == "ascii":
        return decomposed.encode("ascii", "ignore").decode("ascii")
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def word_ngrams(words: Sequence[str], min_n: int, max_n: int) -> list[str]:
    """Contiguous word n-grams joined by single spaces, shortest first."""
    out: list[str] = []
    for n in range(min_n, min(max_n, len(words)) + 1):
        if n == 1:
            out.extend(words)
        else:
            out.extend(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
    return out


def char_ngrams(text: str, min_n: int, max_n: int) -> list[str]:
    """Character n-grams over the text with whitespace runs collapsed to one space."""
    text = _MULTI_SPACE.sub(" ", text)
    out: list[str] = []
    for n in range(min_n, min(max_n, len(text)) + 1):
        out.extend(text[i : i + n] for i in range(len(text) - n + 1))
    return out


def char_wb_ngrams(text: str, min_n: int, max_n: int) -> list[str]:
    """Character n-grams inside word boundaries: each word padded with a space each side.

    A padded word shorter than n still yields itself once, as scikit-learn does.
    """
    out: list[str] = []
    for word in text.split():
        padded = f" {word} "
        length = len(padded)
        for n in range(min_n, max_n + 1):
            if length <= n:
                out.append(padded)
                # longer n-grams would repeat the same padded word
                break
            out.extend(padded[i : i + n] for i in range(length - n + 1))
    return out


# Word n-grams beyond this many tokens never repeat; the bound keeps feature counts sane.
MAX_NGRAM = 20
# A document count (whole number) or a proportion of the documents (0.0 to 1.0).
DOCUMENT_FREQUENCY = AnyOf((Int(0, 10**12), Float(0.0, 1.0)))


@register
class CountVectorsFeaturizer(Featurizer):
    """Sparse count features of a message (sentence) and of each of its tokens (sequence).

    All-digit tokens are mapped to one `__NUMBER__` feature, like Rasa does.
    """

    name = "CountVectorsFeaturizer"
    version = "1"
    trainable = True
    defaults: ClassVar[dict[str, Any]] = {
        "analyzer": "word",
        "min_ngram": Option(1, Int(1, MAX_NGRAM)),
        "max_ngram": Option(1, Int(1, MAX_NGRAM)),
        "min_df": Option(1, DOCUMENT_FREQUENCY),
        "max_df": Option(1.0, DOCUMENT_FREQUENCY),
        "max_features": Option(None, Int(1, 100_000_000, null=True)),
        "lowercase": True,
        "strip_accents": Option(None, OfType((str,), null=True)),
        "stop_words": Option(None, AnyOf((strings(1_000_000, null=True), OfType((str,))))),
        "OOV_token": Option(None, OfType((str,), null=True)),
        "OOV_words": Option([], strings(1_000_000)),
        "use_lemma": True,
        "use_shared_vocab": False,
        "alias": Option(None, OfType((str,), null=True)),
        # Columns kept free for words a finetune meets (Rasa 2's buffer, per attribute;
        # only `text` is featurized here). None: no room, new words stay unknown.
        "additional_vocabulary_size": Option(
            None,
            AnyOf((
                Int(0, MAX_ADDITIONAL, null=True),
                MapOf(("text", "response", "action_text"), Int(0, MAX_ADDITIONAL, null=True)),
            )),
        ),
    }
    finetunable = True
    epoch_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: dict[str, Any], vocabulary: Sequence[str] | None = None,
                 size: int | None = None) -> None:
        super().__init__(config)
        self.analyzer = config["analyzer"]
        if self.analyzer not in ANALYZERS:
            raise ConfigError(f"CountVectorsFeaturizer: analyzer must be one of {', '.join(ANALYZERS)}, got {self.analyzer!r}")
        self.min_n = int(config["min_ngram"])
        self.max_n = int(config["max_ngram"])
        if self.min_n < 1 or self.max_n < self.min_n:
            raise ConfigError(f"CountVectorsFeaturizer: need 1 <= min_ngram <= max_ngram, got {self.min_n}, {self.max_n}")
        for key in ("min_df", "max_df"):
            value = config[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"CountVectorsFeaturizer: {key} must be a non-negative int or float, got {value!r}")
            if isinstance(value, float) and value > 1.0:
                raise ConfigError(f"CountVectorsFeaturizer: {key} as a proportion must be <= 1.0, got {value}")
        max_features = config["max_features"]
        if max_features is not None and (not isinstance(max_features, int) or max_features < 1):
            raise ConfigError(f"CountVectorsFeaturizer: max_features must be a positive int, got {max_features!r}")
        if config["strip_accents"] not in (None, "ascii", "unicode"):
            raise ConfigError("CountVectorsFeaturizer: strip_accents must be 'ascii', 'unicode' or null")
        stop_words = config["stop_words"]
        if isinstance(stop_words, str):
            raise ConfigError(
                f"CountVectorsFeaturizer: stop_words={stop_words!r} names a built-in list trainkit "
                "does not ship; give the stop words as a list"
            )
        self.lowercase = bool(config["lowercase"])
        self.stop_words = frozenset(stop_words or ())
        self.oov_token: str | None = config["OOV_token"]
        oov_words = config["OOV_words"] or []
        if isinstance(oov_words, str):
            oov_words = [oov_words]
        if oov_words and not self.oov_token:
            warnings.warn("CountVectorsFeaturizer: OOV_words given without OOV_token; they are ignored", stacklevel=2)
            oov_words = []
        if self.lowercase and self.oov_token:
            self.oov_token = self.oov_token.lower()
            oov_words = [w.lower() for w in oov_words]
        self.oov_words = frozenset(oov_words)
        if self.analyzer != "word":
            if self.oov_token is not None:
                warnings.warn("CountVectorsFeaturizer: OOV_token is ignored by character analyzers", stacklevel=2)
            if self.stop_words:
                warnings.warn("CountVectorsFeaturizer: stop_words are ignored by character analyzers", stacklevel=2)
        self.vocabulary: list[str] = list(vocabulary or [])
        # Feature columns: the vocabulary, then the room left for a finetune's new terms.
        self.size = len(self.vocabulary) if size is None else max(int(size), len(self.vocabulary))
        self._index = {term: i for i, term in enumerate(self.vocabulary)}
        self._term_cache: dict[str, list[int]] = {}

    # -------------------------------------------------------------------- analysis
    def _preprocess(self, text: str) -> str:
        if self.lowercase:
            text = text.lower()
        return strip_accents(text, self.config["strip_accents"])

    def analyze(self, document: str) -> list[str]:
        """The terms (with repeats) a document contributes."""
        document = self._preprocess(document)
        if self.analyzer == "word":
            words = _WORD.findall(document)
            if self.stop_words:
                words = [w for w in words if w not in self.stop_words]
            return word_ngrams(words, self.min_n, self.max_n)
        if self.analyzer == "char":
            return char_ngrams(document, self.min_n, self.max_n)
        return char_wb_ngrams(document, self.min_n, self.max_n)

    def message_tokens(self, tokens: Iterable[Token], in_training: bool = False) -> list[str]:
        """Token strings after number folding, lowercasing and out-of-vocabulary mapping."""
        use_lemma = self.config["use_lemma"]
        words = [(t.lemma if use_lemma and t.lemma else t.text) for t in tokens]
        words = [_NUMBER.sub(NUMBER_TOKEN, w) for w in words]
        if self.lowercase:
            words = [w.lower() for w in words]
        if self.oov_token and self.analyzer == "word":
            if not in_training and self.oov_token in self._index:
                words = [w if w in self._index else self.oov_token for w in words]
            elif self.oov_words:
                words = [self.oov_token if w in self.oov_words else w for w in words]
        return words

    # -------------------------------------------------------------------- training
    def train(self, inputs: Inputs, out: ArtifactWriter) -> None:
        training_data, batch = training_batch({k: v for k, v in inputs.items() if k != "features"})
        documents = [" ".join(self.message_tokens(tokens, in_training=True)) for tokens in batch.tokens]
        # Rasa counts every training example as a document, also those without text.
        documents += [""] * (len(training_data.training_examples) - len(documents))
        if self.config["use_shared_vocab"] and inputs.get("tokens") is not None:
            tokens_json = inputs["tokens"].json("tokens.json")  # type: ignore[union-attr]
            labels = {**tokens_json.get("intent_tokens", {}), **tokens_json.get("action_name_tokens", {})}
            for example in training_data.training_examples:
                for label in (example.intent, example.action_name):
                    if label:
                        documents.append(" ".join(labels.get(label, [label])))
        self._check_oov_present(documents)
        base = inputs.get(BASE_MODEL)
        if base is not None:
            assert not isinstance(base, list)
            self._extend(base.json(VOCABULARY_FILE), self._build_vocabulary(documents))
        else:
            self.vocabulary = self._build_vocabulary(documents)
            self.size = len(self.vocabulary) + self._additional_size()
        self._index = {term: i for i, term in enumerate(self.vocabulary)}
        out.json(VOCABULARY_FILE, {"vocabulary": self.vocabulary, "size": self.size})

    def _additional_size(self) -> int:
        value = self.config["additional_vocabulary_size"]
        if isinstance(value, dict):
            value = value.get("text")
        return int(value or 0)

    def _extend(self, base: dict[str, Any], found: list[str]) -> None:
        """A finetune's vocabulary: the base's, in its order, then new terms in its free
        columns; the number of columns stays, so the classifiers' weights still fit."""
        vocabulary = [str(term) for term in base["vocabulary"]]
        size = int(base.get("size", len(vocabulary)))
        known = set(vocabulary)
        new = [term for term in found if term not in known]
        room = size - len(vocabulary)
        if len(new) > room:
            warnings.warn(
                f"CountVectorsFeaturizer: {len(new) - room} of the {len(new)} new terms do not fit the "
                f"vocabulary of the model to finetune (room for {room}); they are ignored. Set "
                "additional_vocabulary_size when training from scratch to leave room for them",
                stacklevel=3,
            )
        self.vocabulary = vocabulary + new[:room]
        self.size = size

    def _check_oov_present(self, documents: list[str]) -> None:
        if not self.oov_token or self.oov_words or self.analyzer != "word":
            return
        if any(documents) and not any(self.oov_token in d for d in documents):
            warnings.warn(
                f"CountVectorsFeaturizer: OOV_token '{self.oov_token}' does not occur in any training "
                "example; unseen words will be ignored at prediction",
                stacklevel=3,
            )

    def _build_vocabulary(self, documents: list[str]) -> list[str]:
        """Terms kept after document-frequency and max_features pruning, sorted."""
        term_ids: dict[str, int] = {}
        doc_ids: list[int] = []
        ids: list[int] = []
        for d, document in enumerate(documents):
            terms = self.analyze(document)
            ids.extend(term_ids.setdefault(t, len(term_ids)) for t in terms)
            doc_ids.extend([d] * len(terms))
        n_docs = len(documents)
        if not term_ids:
            warnings.warn("CountVectorsFeaturizer: no terms in the training data; it produces no features", stacklevel=3)
            return []
        terms_arr = np.asarray(ids, np.int64)
        docs_arr = np.asarray(doc_ids, np.int64)
        n_terms = len(term_ids)
        term_freq = np.bincount(terms_arr, minlength=n_terms)
        pairs = np.unique(docs_arr * n_terms + terms_arr)
        doc_freq = np.bincount(pairs % n_terms, minlength=n_terms)
        min_df, max_df = self.config["min_df"], self.config["max_df"]
        min_count = min_df if isinstance(min_df, int) else min_df * n_docs
        max_count = max_df if isinstance(max_df, int) else max_df * n_docs
        if max_count < min_count:
            raise ConfigError("CountVectorsFeaturizer: max_df corresponds to fewer documents than min_df")
        keep = (doc_freq >= min_count) & (doc_freq <= max_count)
        names = np.array(list(term_ids), dtype=object)
        kept = np.flatnonzero(keep)
        max_features = self.config["max_features"]
        if max_features is not None and kept.size > max_features:
            # most frequent first; ties broken by the term itself so the choice is stable
            order = sorted(kept.tolist(), key=lambda i: (-int(term_freq[i]), names[i]))
            kept = np.asarray(order[:max_features], np.int64)
        vocabulary = sorted(str(names[i]) for i in kept)
        if not vocabulary:
            warnings.warn(
                "CountVectorsFeaturizer: no term survives min_df/max_df/max_features; it produces no features",
                stacklevel=3,
            )
        return vocabulary

    # ------------------------------------------------------------------ featurizing
    def _term_ids(self, document: str) -> list[int]:
        index = self._index
        return [index[t] for t in self.analyze(document) if t in index]

    def featurize(self, batch: MessageBatch) -> FeatureSet:
        """Counts of the joined message (sentence) and of each token (sequence)."""
        dim = self.size
        cache = self._term_cache
        seq_rows: list[int] = []
        seq_cols: list[int] = []
        sent_rows: list[int] = []
        sent_cols: list[int] = []
        row = 0
        for m, tokens in enumerate(batch.tokens):
            words = self.message_tokens(tokens)
            for word in words:
                ids = cache.get(word)
                if ids is None:
                    ids = cache[word] = self._term_ids(word)
                seq_cols.extend(ids)
                seq_rows.extend([row] * len(ids))
                row += 1
            ids = self._term_ids(" ".join(words)) if words else []
            sent_cols.extend(ids)
            sent_rows.extend([m] * len(ids))
        sequence = CSR.from_coo(seq_rows, seq_cols, None, (row, dim))
        sentence = CSR.from_coo(sent_rows, sent_cols, None, (len(batch.tokens), dim))
        return FeatureSet(self.origin, sentence, sequence, batch.token_offsets)

    @classmethod
    def load(cls, config: dict[str, Any], model: Artifact | None) -> Component:
        if model is None:
            return cls(config, [])
        stored = model.json(VOCABULARY_FILE)
        vocabulary, size = stored["vocabulary"], stored.get("size")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int)
                                 or not len(vocabulary) <= size <= len(vocabulary) + MAX_ADDITIONAL):
            raise TrainkitError(f"{VOCABULARY_FILE}: 'size' must be an integer from the vocabulary's "
                                f"length to {MAX_ADDITIONAL} more, got {size!r}")
        return cls(config, vocabulary, size)
