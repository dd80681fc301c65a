"""What NLU components pass between each other: tokens, features and parse results.

Training and prediction go through the same code: a process node turns the training data
and upstream artifacts into a `MessageBatch` and calls the component's own batch
transform, then writes what that transform produced. So a feature a model was trained on
is, by construction, the feature it sees at prediction time.

On disk (per node):
- tokens.json: `{"spans": [[start, end, start, end, ...] per message], "intent_tokens": {...}}`
  (token text is the slice of the message text, so it is not stored twice), and
  `"lemmas": [[lemma or "", ...] per message]` when the tokenizer gives lemmas;
- features.npz: `text.sentence.*` (n_messages x d) and `text.sequence.*` (n_tokens x d)
  CSR arrays plus `text.token_offsets`; features.json names the origin and dimensions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainkit.data.training_data import Message, TrainingData
from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.ml.sparse import CSR

TRAINING_DATA_FILE = "training_data.json"
TOKENS_FILE = "tokens.json"
FEATURES_FILE = "features.npz"
FEATURES_META_FILE = "features.json"
TEXT = "text"

Matrix = CSR | np.ndarray


# A token's part-of-speech tag in `Token.data` (Rasa's key): spaCy's fine-grained tag.
POS = "pos"


@dataclass
class Token:
    """One token of a message, with character offsets into the message text."""

    text: str
    start: int
    end: int
    lemma: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class FeatureSet:
    """The features one featurizer produced for a batch of messages.

    `sequence` has one row per token of every message, messages one after another;
    `token_offsets[i]:token_offsets[i+1]` are the rows of message i.
    """

    origin: str
    sentence: Matrix | None
    sequence: Matrix | None
    token_offsets: np.ndarray
    feature_names: list[str] | None = None

    def to_arrays(self, prefix: str = TEXT) -> dict[str, np.ndarray]:
        """npz arrays for this set (dense matrices are stored as they are)."""
        arrays: dict[str, np.ndarray] = {f"{prefix}.token_offsets": np.asarray(self.token_offsets, np.int64)}
        for kind, matrix in (("sentence", self.sentence), ("sequence", self.sequence)):
            if isinstance(matrix, CSR):
                arrays.update(matrix.to_arrays(f"{prefix}.{kind}"))
            elif matrix is not None:
                arrays[f"{prefix}.{kind}.dense"] = np.asarray(matrix, dtype=np.float64)
        return arrays

    @classmethod
    def from_arrays(cls, origin: str, arrays: dict[str, np.ndarray], prefix: str = TEXT,
                    feature_names: list[str] | None = None) -> FeatureSet:
        """Inverse of `to_arrays`."""
        found: dict[str, Matrix | None] = {}
        for kind in ("sentence", "sequence"):
            key = f"{prefix}.{kind}"
            if CSR.has_arrays(arrays, key):
                found[kind] = CSR.from_arrays(arrays, key)
            elif f"{key}.dense" in arrays:
                found[kind] = arrays[f"{key}.dense"]
            else:
                found[kind] = None
        return cls(origin, found["sentence"], found["sequence"], arrays[f"{prefix}.token_offsets"], feature_names)


@dataclass
class MessageBatch:
    """Messages being parsed together, and everything components have added to them.

    Result lists hold one entry per message. Feature dicts keep insertion (pipeline)
    order, which is the column order classifiers concatenate them in.
    """

    texts: list[str]
    tokens: list[list[Token]] = field(default_factory=list)
    sentence_features: dict[str, Matrix] = field(default_factory=dict)
    sequence_features: dict[str, Matrix] = field(default_factory=dict)
    feature_names: dict[str, list[str]] = field(default_factory=dict)
    intent: list[dict[str, Any] | None] = field(default_factory=list)
    intent_ranking: list[list[dict[str, Any]]] = field(default_factory=list)
    entities: list[list[dict[str, Any]]] = field(default_factory=list)
    response_selector: list[dict[str, Any] | None] = field(default_factory=list)
    # What components of one pipeline share while processing this batch, never part of
    # the parse result: the spaCy components' documents, so a message goes through the
    # spaCy pipeline once however many spaCy components read it.
    shared: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.texts)
        if not self.intent:
            self.intent = [None] * n
        if not self.intent_ranking:
            self.intent_ranking = [[] for _ in range(n)]
        if not self.entities:
            self.entities = [[] for _ in range(n)]
        if not self.response_selector:
            self.response_selector = [None] * n

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def token_offsets(self) -> np.ndarray:
        """Row ranges of each message in the sequence feature matrices."""
        return token_offsets(self.tokens)

    def add_features(self, features: FeatureSet) -> str:
        """Attach a featurizer's output; a repeated origin gets a numeric suffix.

        Two CountVectorsFeaturizers without an alias must not overwrite each other, and
        the suffixing is deterministic because pipeline order is.
        """
        origin = features.origin
        number = 1
        while origin in self.sentence_features or origin in self.sequence_features:
            number += 1
            origin = f"{features.origin}_{number}"
        if features.sentence is not None:
            self.sentence_features[origin] = features.sentence
        if features.sequence is not None:
            self.sequence_features[origin] = features.sequence
        if features.feature_names is not None:
            self.feature_names[origin] = features.feature_names
        return origin

    def feature_sets(self) -> list[FeatureSet]:
        """The attached features as FeatureSets, in pipeline order."""
        origins = list(dict.fromkeys([*self.sentence_features, *self.sequence_features]))
        offsets = self.token_offsets
        return [
            FeatureSet(o, self.sentence_features.get(o), self.sequence_features.get(o), offsets,
                       self.feature_names.get(o))
            for o in origins
        ]

    def parse_results(self) -> list[dict[str, Any]]:
        """Rasa's parse result dict for every message."""
        results = []
        for i, text in enumerate(self.texts):
            intent = self.intent[i] or {"name": None, "confidence": 0.0}
            result: dict[str, Any] = {
                "text": text,
                "intent": dict(intent),
                "entities": [dict(e) for e in self.entities[i]],
                "intent_ranking": [dict(r) for r in self.intent_ranking[i]],
            }
            if self.response_selector[i] is not None:
                result["response_selector"] = self.response_selector[i]
            results.append(result)
        return results


def token_offsets(tokens: Sequence[Sequence[Token]]) -> np.ndarray:
    """Cumulative token counts: message i owns rows offsets[i]:offsets[i+1]."""
    offsets = np.zeros(len(tokens) + 1, np.int64)
    np.cumsum([len(t) for t in tokens], out=offsets[1:])
    return offsets


# ---------------------------------------------------------------- training-side helpers
def featurizable_examples(training_data: TrainingData) -> list[Message]:
    """The training examples that have a text, in order: the rows of every feature matrix."""
    return [m for m in training_data.training_examples if m.text]


def load_training_data(artifact: Artifact) -> TrainingData:
    """The TrainingData a provider node wrote."""
    return TrainingData.from_dict(artifact.json(TRAINING_DATA_FILE))


def write_tokens(out: ArtifactWriter, tokens: Sequence[Sequence[Token]], extra: dict[str, Any] | None = None) -> None:
    """Persist tokens as offset pairs (plus any label tokenisation in `extra`).

    Lemmas and part-of-speech tags (from a tokenizer that has them, SpacyTokenizer) are
    stored beside the spans, so featurizers reading this artifact see what prediction
    sees; without any, nothing is added.
    """
    spans = [[v for t in message for v in (t.start, t.end)] for message in tokens]
    payload: dict[str, Any] = {"spans": spans}
    if any(t.lemma for message in tokens for t in message):
        payload["lemmas"] = [[t.lemma or "" for t in message] for message in tokens]
    if any(t.data.get(POS) for message in tokens for t in message):
        payload["pos"] = [[t.data.get(POS) or "" for t in message] for message in tokens]
    payload.update(extra or {})
    out.json(TOKENS_FILE, payload)


def read_tokens(artifact: Artifact | None, texts: Sequence[str]) -> list[list[Token]]:
    """Tokens of the featurizable examples; without a tokenizer every message is one token."""
    if artifact is None:
        return [[Token(t, 0, len(t))] if t else [] for t in texts]
    stored = artifact.json(TOKENS_FILE)
    spans = stored["spans"]
    if len(spans) != len(texts):
        raise ValueError(f"tokens artifact has {len(spans)} messages, training data has {len(texts)}")
    tokens = [
        [Token(text[s:e], s, e) for s, e in zip(span[0::2], span[1::2], strict=True)]
        for text, span in zip(texts, spans, strict=True)
    ]
    if "lemmas" in stored:
        for message, lemmas in zip(tokens, stored["lemmas"], strict=True):
            for token, lemma in zip(message, lemmas, strict=True):
                token.lemma = lemma or None
    if "pos" in stored:
        for message, tags in zip(tokens, stored["pos"], strict=True):
            for token, tag in zip(message, tags, strict=True):
                if tag:
                    token.data[POS] = tag
    return tokens


def training_batch(inputs: dict[str, Any]) -> tuple[TrainingData, MessageBatch]:
    """A batch of the featurizable training examples with their tokens (and features)."""
    training_data = load_training_data(inputs["training_data"])
    texts = [m.text or "" for m in featurizable_examples(training_data)]
    batch = MessageBatch(texts=texts, tokens=read_tokens(inputs.get("tokens"), texts))
    for feature_set in read_feature_sets(inputs.get("features") or []):
        batch.add_features(feature_set)
    return training_data, batch


def write_features(out: ArtifactWriter, features: FeatureSet) -> None:
    """Persist one featurizer's output for the training examples."""
    out.arrays(FEATURES_FILE, features.to_arrays(TEXT))
    meta: dict[str, Any] = {
        "origin": features.origin,
        "sentence_dim": None if features.sentence is None else int(features.sentence.shape[1]),
        "sequence_dim": None if features.sequence is None else int(features.sequence.shape[1]),
    }
    if features.feature_names is not None:
        meta["feature_names"] = list(features.feature_names)
    out.json(FEATURES_META_FILE, meta)


def read_feature_sets(artifacts: Iterable[Artifact]) -> list[FeatureSet]:
    """Features of upstream featurizers, in pipeline order."""
    sets = []
    for artifact in artifacts:
        meta = artifact.json(FEATURES_META_FILE) if artifact.has(FEATURES_META_FILE) else {}
        origin = meta.get("origin", artifact.path.name)
        sets.append(FeatureSet.from_arrays(origin, artifact.arrays(FEATURES_FILE), TEXT, meta.get("feature_names")))
    return sets


# ------------------------------------------------------------------- feature assembly
def as_csr(matrix: Matrix) -> CSR:
    """Dense blocks (e.g. from a language model) join sparse ones as CSR."""
    return matrix if isinstance(matrix, CSR) else CSR.from_dense(matrix)


def stack_features(matrices: Iterable[Matrix], n_rows: int) -> CSR:
    """All given feature blocks side by side; (n_rows x 0) when there are none."""
    blocks = [as_csr(m) for m in matrices]
    if not blocks:
        return CSR.empty(n_rows, 0)
    return CSR.hstack(blocks)


# Per dense block (by origin): [column means, 1 / column standard deviations].
DenseScaling = dict[str, list[list[float]]]


def dense_scaling(features: dict[str, Matrix]) -> DenseScaling:
    """Standardisation of every dense block (a language model's vectors) over the rows given.

    Sparse count features are O(1) where they are active; pretrained vectors come in
    whatever scale the model learned (MiniLM's are about 0.3 per dimension), which a
    network fed both would otherwise weigh far less. Computed on the training data and
    stored with the model, so prediction scales the same way.
    """
    scaling: DenseScaling = {}
    for origin, matrix in features.items():
        if isinstance(matrix, np.ndarray) and matrix.shape[0] and matrix.shape[1]:
            values = np.asarray(matrix, np.float64)
            std = values.std(axis=0)
            scale = np.where(std > 1e-8, 1.0 / np.maximum(std, 1e-8), 1.0)
            scaling[origin] = [values.mean(axis=0).tolist(), scale.tolist()]
    return scaling


def _scaled(features: dict[str, Matrix], scaling: DenseScaling | None) -> list[Matrix]:
    blocks: list[Matrix] = []
    for origin, matrix in features.items():
        if scaling and origin in scaling and isinstance(matrix, np.ndarray):
            mean, scale = (np.asarray(v, np.float64) for v in scaling[origin])
            if mean.size != matrix.shape[1]:
                raise ValueError(f"dense features of {origin} have {matrix.shape[1]} columns, the model was "
                                 f"trained on {mean.size}")
            matrix = (np.asarray(matrix, np.float64) - mean) * scale
        blocks.append(matrix)
    return blocks


def dense_columns(features: dict[str, Matrix]) -> np.ndarray:
    """Which columns of the stacked matrix come from dense blocks."""
    return np.concatenate([np.full(m.shape[1], isinstance(m, np.ndarray)) for m in features.values()]
                          or [np.zeros(0, bool)])


def sentence_matrix(batch: MessageBatch, scaling: DenseScaling | None = None) -> CSR:
    """Every sentence feature of the batch concatenated, in pipeline order (dense blocks
    standardised by `scaling` where it names them)."""
    return stack_features(_scaled(batch.sentence_features, scaling), len(batch))


def sequence_matrix(batch: MessageBatch, scaling: DenseScaling | None = None) -> CSR:
    """Every sequence (per token) feature of the batch concatenated, in pipeline order."""
    return stack_features(_scaled(batch.sequence_features, scaling), int(batch.token_offsets[-1]))


def training_labels(training_data: TrainingData) -> tuple[np.ndarray, list[str | None]]:
    """Rows of the feature matrices that are NLU intent examples, and their intents."""
    examples = featurizable_examples(training_data)
    rows = [i for i, m in enumerate(examples) if m.is_nlu_example]
    return np.asarray(rows, dtype=np.int64), [examples[i].intent for i in rows]
