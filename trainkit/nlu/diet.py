"""DIETClassifier: joint intent classification and entity recognition in numpy.

The model follows DIET (Bunk et al. 2020, "DIET: Lightweight Language Understanding for
Dialogue Systems") without the transformer:

- intents: the concatenated sparse sentence features go through a sparse-to-dense layer
  (Rasa's `dense_dimension`, with `connection_density` and sparse input dropout), the
  `hidden_layers_sizes` feed-forward stack and a projection into `embedding_dimension`;
  each intent has a learned embedding, and the dot-product similarity between the two is
  trained with a softmax over all intents ("cross_entropy") or a margin loss;
- entities: the sparse sequence features of each token go through their own
  sparse-to-dense layer; each token then sees its neighbours (a window of shifted copies,
  the stand-in for the transformer's context) and the sentence vector, and a dense layer
  produces tag scores for a linear-chain CRF: one CRF head for entity tags (BILOU), and
  one each for roles and groups when the data has them.

Everything is trained jointly with Adam. The sparse layers are updated lazily (only the
feature rows present in a batch), so an epoch costs in proportion to the non-zeros of the
data, not to the vocabulary size; identical token rows of a batch go through the token
layer once. Given `random_seed`, training is deterministic.

Where trainkit's defaults differ from Rasa's, it is because the transformer is missing:
`connection_density` is 1.0 (pruning the only hidden layer costs accuracy), the dense
layers get their own `hidden_drop_rate` (0.4, standing in for the dropout inside Rasa's
transformer layers) and the weights of the second half of training are averaged for
prediction (`weight_averaging`, stochastic weight averaging after Izmailov et al. 2018),
which keeps the model from overfitting the few examples per intent over 300 epochs.
DIETClassifier's `learning_rate` is 0.005 (Rasa: 0.001), and the entity heads read the
sentence vector without training the sentence layer. Both were chosen with
`benchmarks/generalisation_bench.py`, which compares the default pipeline with TF-IDF
logistic regression over the same features on ten NLU files at once: at 0.001 DIET was
below the linear model on most of them (banking77 20/intent 0.809 against 0.816). Keeping
the entity gradient out of the sentence layer leaves that layer to the intent loss; on
snips2017 it scored 0.9857 against 0.9785 with one seed, a gap within what seeds alone
move (0.981 to 0.989), at the same entity F1.

`batch_strategy: balanced`, Rasa's default, lays each epoch out in rounds that take from
every label in proportion, so rare intents come back more often (`trainkit.ml.batching`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from trainkit.data.training_data import Message, TrainingData
from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.engine.component import (
    ENTITY_EXTRACTOR,
    FEATURIZER,
    INTENT_CLASSIFIER,
    Component,
    Inputs,
    register,
)
from trainkit.engine.graph import BASE_MODEL
from trainkit.engine.options import (
    DROP_RATE,
    EPOCHS,
    LEARNING_RATE,
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    MAX_UNITS,
    NON_NEGATIVE,
    RANKING_LENGTH,
    SEED,
    SIMILARITY,
    AnyOf,
    Choice,
    Float,
    Int,
    ListOf,
    MapOf,
    OfType,
    Option,
    layers,
    pair_or_int,
    strings,
)
from trainkit.engine.progress import report_epoch
from trainkit.errors import ConfigError, TrainkitError
from trainkit.ml import crf
from trainkit.ml import layers as nn
from trainkit.ml.batching import SEQUENCE, epoch_order
from trainkit.ml.sparse import CSR
from trainkit.nlu.base import NLUComponent
from trainkit.nlu.batch import (
    DenseScaling,
    MessageBatch,
    Token,
    dense_columns,
    dense_scaling,
    featurizable_examples,
    sentence_matrix,
    sequence_matrix,
    training_batch,
)

MODEL_FILE = "model.json"
# Single precision halves the memory traffic of the large sparse layers and doubles BLAS
# throughput; the CRF itself runs in double precision.
DTYPE = np.float32
WEIGHTS_FILE = "weights.npz"

NO_ENTITY = "O"
ENTITY_HEADS = ("entity", "role", "group")

# Rasa options that need a transformer or external tooling; accepted and warned about.
TRANSFORMER_OPTIONS = frozenset(
    {
        "number_of_transformer_layers",
        "transformer_size",
        "number_of_attention_heads",
        "unidirectional_encoder",
        "use_key_relative_attention",
        "use_value_relative_attention",
        "max_relative_position",
        "use_masked_language_model",
        "tensorboard_log_directory",
        "tensorboard_log_level",
        "checkpoint_model",
    }
)

# Options shared by DIETClassifier and ResponseSelector, with Rasa 3.6 defaults except
# where noted.
_DIMENSION = AnyOf((Int(1, MAX_UNITS), MapOf(("text", "label"), Int(1, MAX_UNITS))))
_LAYERS = AnyOf((layers(("text", "label"), MAX_UNITS), ListOf(Int(1, MAX_UNITS), max_length=16)))

COMMON_DEFAULTS: dict[str, Any] = {
    "hidden_layers_sizes": Option({"text": [], "label": []}, _LAYERS),
    # size of the sparse-to-dense layer; Rasa uses 128 in front of its transformer, here
    # it is the model's main hidden layer
    "dense_dimension": Option({"text": 128, "label": 20}, AnyOf((_DIMENSION, Choice((None,))))),
    "concat_dimension": Option({"text": 128, "label": 20}, AnyOf((_DIMENSION, Choice((None,))))),
    "embedding_dimension": Option(20, Int(1, MAX_UNITS)),
    "epochs": Option(300, EPOCHS),
    "batch_size": Option([64, 256], pair_or_int(1, MAX_BATCH_SIZE)),
    "batch_strategy": Option("balanced", Choice(("balanced", "sequence"))),
    "learning_rate": Option(0.001, LEARNING_RATE),
    "number_of_negative_examples": Option(20, Int(0, 10_000)),
    "similarity_type": Option("auto", Choice(("auto", "inner", "cosine"))),
    "loss_type": Option("cross_entropy", Choice(("cross_entropy", "margin", "softmax"))),
    "ranking_length": Option(10, RANKING_LENGTH),
    "renormalize_confidences": False,
    "maximum_positive_similarity": Option(0.8, SIMILARITY),
    "maximum_negative_similarity": Option(-0.4, SIMILARITY),
    "use_maximum_negative_similarity": True,
    "scale_loss": False,
    "regularization_constant": Option(0.002, NON_NEGATIVE),
    "negative_margin_scale": Option(0.8, NON_NEGATIVE),
    "drop_rate": Option(0.2, DROP_RATE),
    "drop_rate_attention": Option(0.0, DROP_RATE),
    # dropout after the hidden layers; null uses drop_rate (not a Rasa option: Rasa's
    # transformer layers add dropout of their own, which this stands in for)
    "hidden_drop_rate": Option(0.4, Float(0.0, 1.0, open_high=True, null=True)),
    # Rasa prunes 80% of the connections (0.2) of layers feeding its transformer; here the
    # sparse layer is the encoder's only hidden layer and pruning it costs accuracy
    "connection_density": Option(1.0, Float(0.0, 1.0, open_low=True)),
    "weight_sparsity": Option(None, Float(0.0, 1.0, open_high=True, null=True)),
    "use_sparse_input_dropout": True,
    "use_dense_input_dropout": False,
    "evaluate_every_number_of_epochs": Option(20, Int(-1, MAX_EPOCHS)),
    "evaluate_on_number_of_examples": Option(0, Int(0, 1_000_000)),
    "random_seed": Option(None, SEED),
    "constrain_similarities": False,
    "model_confidence": Option("softmax", Choice(("softmax",))),
    "featurizers": Option([], strings(1_000)),
    "split_entities_by_comma": Option(True, AnyOf((OfType((bool,)), MapOf(None, OfType((bool,)))))),
    # tokens on each side a token sees when tagging entities (not a Rasa option: it
    # replaces the transformer's context)
    "entity_context_window": Option(2, Int(0, 50)),
    # feed the max-pooled token context into the sentence embedding, so intents see
    # word order (not a Rasa option: Rasa's transformer plays this part)
    "use_token_context": False,
    # average the weights of the last epochs (from this fraction of training on) for
    # prediction, which makes the model less sensitive to the number of epochs (not a
    # Rasa option; null turns it off)
    "weight_averaging": Option(0.5, Float(0.0, 1.0, open_high=True, null=True)),
    "entity_hidden_size": Option(128, Int(1, MAX_UNITS)),
}


def estimated_network_memory(config: dict[str, Any]) -> int:
    """Bytes for the dense part of a DIET-style network: float32 weights, their
    gradients and Adam's two moments, for the configured widths (the sparse input layer
    depends on the vocabulary, so this is a lower bound)."""
    text = [_dimension(config.get("dense_dimension"), "text", 256),
            *_layer_sizes(config.get("hidden_layers_sizes"), "text"),
            int(config.get("embedding_dimension") or 1)]
    label = [_dimension(config.get("dense_dimension"), "label", 20),
             *_layer_sizes(config.get("hidden_layers_sizes"), "label"),
             int(config.get("embedding_dimension") or 1)]
    entity = int(config.get("entity_hidden_size") or 0)
    window = 2 * int(config.get("entity_context_window") or 0) + 1
    params = sum(a * b for side in (text, label) for a, b in zip(side, side[1:], strict=False))
    params += entity * entity * window
    return params * 4 * 4


# ============================================================== entity tagging

def token_labels(tokens: list[Token], message: Message, attribute: str) -> list[str]:
    """The entity / role / group label of each token ("O" outside annotated spans).

    A token belongs to an entity when their character ranges overlap, so an annotation
    that cuts through a token still labels it.
    """
    labels = [NO_ENTITY] * len(tokens)
    for entity in message.entities:
        value = getattr(entity, attribute)
        if not value:
            continue
        for i, token in enumerate(tokens):
            if token.start < entity.end and token.end > entity.start:
                labels[i] = value
    return labels


def entity_spans(tokens: list[Token], message: Message) -> list[str]:
    """BILOU entity tags of the tokens, keeping adjacent entities of one type apart."""
    tags = [NO_ENTITY] * len(tokens)
    for entity in message.entities:
        inside = [i for i, t in enumerate(tokens) if t.start < entity.end and t.end > entity.start]
        if not inside:
            continue
        if len(inside) == 1:
            tags[inside[0]] = f"U-{entity.entity}"
            continue
        tags[inside[0]] = f"B-{entity.entity}"
        for i in inside[1:-1]:
            tags[i] = f"I-{entity.entity}"
        tags[inside[-1]] = f"L-{entity.entity}"
    return tags


def entity_tags(tokens: list[Token], message: Message, bilou: bool) -> list[str]:
    """Training tags for the entity head, with or without the BILOU prefixes."""
    if bilou:
        return entity_spans(tokens, message)
    return token_labels(tokens, message, "entity")


def _split_tag(tag: str) -> tuple[str | None, str]:
    if len(tag) > 2 and tag[1] == "-" and tag[0] in "BILU":
        return tag[0], tag[2:]
    return None, tag


def decode_entity_tags(tags: list[str]) -> list[tuple[int, int, str]]:
    """Token ranges [first, last] and labels of the entities a tag sequence describes.

    Tolerates ill-formed BILOU sequences the way Rasa does: an entity starts at a B or U
    tag or where the label changes, and ends at an L or U tag or where the label changes.
    Plain labels (no BILOU) group consecutive tokens with the same label.
    """
    spans: list[tuple[int, int, str]] = []
    current: list[Any] | None = None
    for i, tag in enumerate(tags):
        prefix, label = _split_tag(tag)
        if label == NO_ENTITY:
            if current:
                spans.append(tuple(current))  # type: ignore[arg-type]
            current = None
            continue
        starts_new = current is None or current[2] != label or prefix in ("B", "U")
        if starts_new:
            if current:
                spans.append(tuple(current))  # type: ignore[arg-type]
            current = [i, i, label]
        else:
            assert current is not None
            current[1] = i
        if prefix in ("L", "U"):
            spans.append(tuple(current))  # type: ignore[arg-type]
            current = None
    if current:
        spans.append(tuple(current))  # type: ignore[arg-type]
    return spans


def split_by_comma(
    spans: list[tuple[int, int, str]], tokens: list[Token], text: str, split: bool | dict[str, bool]
) -> list[tuple[int, int, str]]:
    """Cut multi-token entities at commas between tokens (Rasa's `split_entities_by_comma`).

    `split` is a bool for all entity types, or a per-type dict whose missing types fall
    back to True, as in Rasa.
    """
    out = []
    for first, last, label in spans:
        do_split = split.get(label, True) if isinstance(split, dict) else bool(split)
        if not do_split or first == last:
            out.append((first, last, label))
            continue
        begin = first
        for i in range(first, last):
            if "," in text[tokens[i].end : tokens[i + 1].start]:
                out.append((begin, i, label))
                begin = i + 1
        out.append((begin, last, label))
    return out


def build_entities(
    text: str,
    tokens: list[Token],
    heads: dict[str, tuple[list[str], list[float]]],
    extractor: str,
    split: bool | dict[str, bool] = True,
) -> list[dict[str, Any]]:
    """Rasa entity dicts from per-token predictions of the entity (and role/group) heads.

    `heads[name]` is (tag per token, confidence per token). An entity's confidence is the
    lowest confidence among its tokens; its role / group is the most frequent non-"O"
    label of that head over its tokens.
    """
    if "entity" not in heads or not tokens:
        return []
    tags, confidences = heads["entity"]
    entities = []
    for first, last, label in split_by_comma(decode_entity_tags(tags), tokens, text, split):
        start, end = tokens[first].start, tokens[last].end
        entity: dict[str, Any] = {
            "entity": label,
            "start": start,
            "end": end,
            "value": text[start:end],
            "confidence_entity": float(min(confidences[first : last + 1])),
        }
        for head in ("role", "group"):
            if head not in heads:
                continue
            head_tags, head_conf = heads[head]
            votes: dict[str, list[float]] = {}
            for i in range(first, last + 1):
                if head_tags[i] != NO_ENTITY:
                    votes.setdefault(head_tags[i], []).append(head_conf[i])
            if votes:
                best = max(sorted(votes), key=lambda k: len(votes[k]))
                entity[head] = best
                entity[f"confidence_{head}"] = float(min(votes[best]))
        entity["extractor"] = extractor
        entities.append(entity)
    return entities


# ================================================================= the network


@dataclass
class TagHead:
    """One CRF head: its name (entity / role / group) and its tag vocabulary."""

    name: str
    tags: list[str]


@dataclass
class NetworkSpec:
    """Everything that fixes the shapes of the network, persisted with the weights."""

    sentence_dim: int
    sequence_dim: int
    labels: list[str]
    heads: list[TagHead] = field(default_factory=list)
    dense_dimension: int = 256
    hidden_sizes: list[int] = field(default_factory=list)
    label_hidden_sizes: list[int] = field(default_factory=list)
    embedding_dimension: int = 20
    entity_hidden_size: int = 128
    context_window: int = 2
    similarity: str = "inner"  # or "cosine"
    intent_classification: bool = True
    token_pooling: bool = False
    # standardisation of dense feature blocks, {"sentence": ..., "sequence": ...}
    dense_scaling: dict[str, DenseScaling] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON form for the model file."""
        return {
            "sentence_dim": self.sentence_dim,
            "sequence_dim": self.sequence_dim,
            "labels": list(self.labels),
            "heads": [{"name": h.name, "tags": list(h.tags)} for h in self.heads],
            "dense_dimension": self.dense_dimension,
            "hidden_sizes": list(self.hidden_sizes),
            "label_hidden_sizes": list(self.label_hidden_sizes),
            "embedding_dimension": self.embedding_dimension,
            "entity_hidden_size": self.entity_hidden_size,
            "context_window": self.context_window,
            "similarity": self.similarity,
            "intent_classification": self.intent_classification,
            "token_pooling": self.token_pooling,
            "dense_scaling": self.dense_scaling,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkSpec:
        """Inverse of `as_dict`."""
        values = dict(data)
        values["heads"] = [TagHead(h["name"], list(h["tags"])) for h in data["heads"]]
        return cls(**values)

    @property
    def offsets(self) -> list[int]:
        """Token offsets of the context window, e.g. [-2, -1, 0, 1, 2]."""
        return list(range(-self.context_window, self.context_window + 1))


@dataclass
class TrainingOptions:
    """The optimisation options the network's training loop reads."""

    epochs: int
    batch_size: tuple[int, int]
    learning_rate: float
    drop_rate: float
    sparse_input_dropout: bool
    connection_density: float
    regularization: float
    loss: nn.SimilarityLossConfig
    number_of_negative_examples: int
    seed: int
    # fraction of training after which end-of-epoch weights are averaged (None: off)
    average_from: float | None = None
    # dropout of the dense hidden layers (the sparse inputs use `drop_rate`)
    hidden_drop_rate: float = 0.2
    # how an epoch orders the examples (`trainkit.ml.batching`)
    batch_strategy: str = "sequence"


@dataclass
class EncodedData:
    """Training (or prediction) inputs as arrays: rows of `sentence` are messages.

    Tokens of message i are rows `token_offsets[i]:token_offsets[i+1]` of `sequence`;
    `tags[head]` holds one tag id per token row; `labels` one label id per message.
    """

    sentence: CSR
    sequence: CSR
    token_offsets: np.ndarray
    labels: np.ndarray | None = None
    tags: dict[str, np.ndarray] = field(default_factory=dict)
    # `duplicate_row_ids(sequence)`, when known, lets batches merge identical tokens
    token_uid: np.ndarray | None = None
    # columns input dropout leaves alone (dense features, unless use_dense_input_dropout)
    protected_sentence: np.ndarray | None = None
    protected_sequence: np.ndarray | None = None

    def __len__(self) -> int:
        return self.sentence.shape[0]


@dataclass
class _Batch:
    """One minibatch with its token layout (padded B x T)."""

    sentence: nn.SparseBatch
    sequence: nn.SparseBatch | None
    lengths: np.ndarray
    token_b: np.ndarray
    token_t: np.ndarray
    steps: int
    labels: np.ndarray | None
    tags: dict[str, np.ndarray]
    # token row -> row of `sequence` when identical token rows were merged
    token_inverse: np.ndarray | None = None


def duplicate_row_ids(matrix: CSR) -> np.ndarray:
    """For each row, the index of the first row with exactly the same entries.

    Tokens repeat a lot ("the", "to", "play"), and the first token layer only depends on
    a token's own feature row, so a minibatch computes it once per distinct row.
    """
    first: dict[bytes, int] = {}
    ids = np.empty(matrix.shape[0], np.int64)
    indptr, indices, data = matrix.indptr, matrix.indices, matrix.data
    for row in range(matrix.shape[0]):
        lo, hi = indptr[row], indptr[row + 1]
        key = indices[lo:hi].tobytes() + b"|" + data[lo:hi].tobytes()
        ids[row] = first.setdefault(key, row)
    return ids


def _gather(data: EncodedData, rows: np.ndarray, with_tokens: bool) -> tuple[CSR, CSR | None, np.ndarray, np.ndarray]:
    """Rows of the sentence matrix and the token rows of those messages."""
    sentence = data.sentence.take_rows(rows)
    lengths = (data.token_offsets[rows + 1] - data.token_offsets[rows]).astype(np.int64)
    if not with_tokens:
        return sentence, None, lengths, np.zeros(0, np.int64)
    total = int(lengths.sum())
    starts = np.repeat(data.token_offsets[rows], lengths)
    within = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    token_rows = starts + within
    return sentence, data.sequence.take_rows(token_rows), lengths, token_rows


class Network:
    """The DIET network: parameters, forward/backward pass, training loop and prediction."""

    def __init__(self, spec: NetworkSpec, params: dict[str, np.ndarray] | None = None) -> None:
        self.spec = spec
        self.params: dict[str, np.ndarray] = params or {}
        self.masks: dict[str, np.ndarray] = {}

    # --------------------------------------------------------------- parameters
    @property
    def uses_entities(self) -> bool:
        """Whether any CRF head is trained."""
        return bool(self.spec.heads)

    @property
    def uses_tokens(self) -> bool:
        """Whether the token layers run (for entities or for pooled intent context)."""
        return bool(self.spec.heads) or self.spec.token_pooling

    def initialise(self, rng: np.random.Generator, connection_density: float) -> None:
        """Glorot-initialised weights; sparse layers get Rasa's fixed connection mask."""
        s = self.spec
        p: dict[str, np.ndarray] = {}
        if s.intent_classification:
            p["sent.W"] = nn.glorot_uniform(rng, s.sentence_dim, s.dense_dimension)
            p["sent.b"] = np.zeros(s.dense_dimension)
            mask = nn.connection_mask(rng, s.sentence_dim, s.dense_dimension, connection_density)
            if mask is not None:
                self.masks["sent.W"] = mask
                p["sent.W"] *= mask
            width = s.dense_dimension
            for i, size in enumerate(s.hidden_sizes):
                p[f"hid{i}.W"] = nn.glorot_uniform(rng, width, size)
                p[f"hid{i}.b"] = np.zeros(size)
                width = size
            if s.token_pooling:
                width += s.entity_hidden_size
            p["emb.W"] = nn.glorot_uniform(rng, width, s.embedding_dimension)
            p["emb.b"] = np.zeros(s.embedding_dimension)
            label_width = s.label_hidden_sizes[0] if s.label_hidden_sizes else s.embedding_dimension
            p["lab.table"] = nn.glorot_uniform(rng, len(s.labels), label_width)
            for i, size in enumerate(s.label_hidden_sizes[1:] + [s.embedding_dimension] if s.label_hidden_sizes else []):
                p[f"labhid{i}.W"] = nn.glorot_uniform(rng, label_width, size)
                p[f"labhid{i}.b"] = np.zeros(size)
                label_width = size
        if self.uses_tokens:
            p["tok.W"] = nn.glorot_uniform(rng, s.sequence_dim, s.entity_hidden_size)
            p["tok.b"] = np.zeros(s.entity_hidden_size)
            mask = nn.connection_mask(rng, s.sequence_dim, s.entity_hidden_size, connection_density)
            if mask is not None:
                self.masks["tok.W"] = mask
                p["tok.W"] *= mask
            ctx_in = len(s.offsets) * s.entity_hidden_size
            p["ctx.W"] = nn.glorot_uniform(rng, ctx_in, s.entity_hidden_size)
            if s.intent_classification:
                p["ctx.S"] = nn.glorot_uniform(rng, s.dense_dimension, s.entity_hidden_size)
            p["ctx.b"] = np.zeros(s.entity_hidden_size)
            for head in s.heads:
                k = len(head.tags)
                p[f"{head.name}.W"] = nn.glorot_uniform(rng, s.entity_hidden_size, k)
                p[f"{head.name}.b"] = np.zeros(k)
                p[f"{head.name}.trans"] = np.zeros((k, k))
                p[f"{head.name}.start"] = np.zeros(k)
                p[f"{head.name}.end"] = np.zeros(k)
        self.params = {name: value.astype(DTYPE) for name, value in p.items()}

    def crf_params(self, head: str) -> crf.CRFParams:
        """The CRF transition parameters of one head."""
        p = self.params
        return crf.CRFParams(
            p[f"{head}.trans"].astype(np.float64),
            p[f"{head}.start"].astype(np.float64),
            p[f"{head}.end"].astype(np.float64),
        )

    # ------------------------------------------------------------------ batches
    def make_batch(
        self,
        data: EncodedData,
        rows: np.ndarray,
        rng: np.random.Generator | None = None,
        input_drop: float = 0.0,
    ) -> _Batch:
        """Gather a minibatch and lay its tokens out on a padded grid.

        With a generator, `input_drop` of the stored sparse inputs are dropped first.
        """
        sentence, sequence, lengths, token_rows = _gather(data, rows, self.uses_tokens)
        inverse = None
        if sequence is not None and data.token_uid is not None:
            distinct, inverse = nn.dense_unique(data.token_uid[token_rows], data.sequence.shape[0])
            sequence = data.sequence.take_rows(distinct)
        if rng is not None and input_drop > 0:
            sentence = nn.sparse_dropout(sentence, input_drop, rng, data.protected_sentence)
            if sequence is not None:
                sequence = nn.sparse_dropout(sequence, input_drop, rng, data.protected_sequence)
        steps = max(int(lengths.max()) if lengths.size else 0, 1)
        token_b = np.repeat(np.arange(rows.size), lengths)
        token_t = np.arange(token_b.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        tags = {name: ids[token_rows] for name, ids in data.tags.items()} if self.uses_entities else {}
        return _Batch(
            nn.SparseBatch.from_csr(sentence, DTYPE, cells_per_entry=nn.SPARSE_CELLS_PER_ENTRY),
            None if sequence is None else nn.SparseBatch.from_csr(sequence, DTYPE, cells_per_entry=nn.SPARSE_CELLS_PER_ENTRY),
            lengths,
            token_b,
            token_t,
            steps,
            None if data.labels is None else data.labels[rows],
            tags,
            inverse,
        )

    # ------------------------------------------------------------ forward pass
    def label_embeddings(self) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        """Embeddings of all labels (one-hot label features through the label layers)."""
        out = self.params["lab.table"]
        caches = []
        i = 0
        while f"labhid{i}.W" in self.params:
            x = nn.relu_forward(out)
            caches.append((out, x))
            out = nn.dense_forward(x, self.params[f"labhid{i}.W"], self.params[f"labhid{i}.b"])
            i += 1
        return out, caches

    def forward(
        self, batch: _Batch, rng: np.random.Generator | None, options: TrainingOptions | None
    ) -> dict[str, Any]:
        """All intermediate values of one pass; dropout only when `rng` is given.

        Order: sentence layer, then the token layers (which see the sentence vector),
        then the sentence embedding (which sees the max-pooled token context).
        """
        s, p = self.spec, self.params
        rate = options.hidden_drop_rate if options is not None else 0.0
        c: dict[str, Any] = {}
        n = batch.lengths.size
        if s.intent_classification:
            h = nn.relu_forward(nn.sparse_dense_forward(batch.sentence, p["sent.W"], p["sent.b"]))
            c["sent.h"] = h
            h, c["sent.mask"] = nn.dropout_forward(h, rate, rng)
            c["sent.out"] = h
        if self.uses_tokens and batch.sequence is not None:
            g = nn.relu_forward(nn.sparse_dense_forward(batch.sequence, p["tok.W"], p["tok.b"]))
            c["tok.h"] = g
            if batch.token_inverse is not None:
                g = g[batch.token_inverse]
            g, c["tok.mask"] = nn.dropout_forward(g, rate, rng)
            parts = [_neighbours(g, batch, k) for k in s.offsets]
            ctx_in = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
            c["ctx.in"] = ctx_in
            pre = nn.dense_forward(ctx_in, p["ctx.W"], p["ctx.b"])
            if s.intent_classification:
                # the sentence vector's share is projected once per message, not per token
                pre = pre + (c["sent.out"] @ p["ctx.S"])[batch.token_b]
            z = nn.relu_forward(pre)
            c["ctx.h"] = z
            z, c["ctx.mask"] = nn.dropout_forward(z, rate, rng)
            c["ctx.out"] = z
            for head in s.heads:
                # tag scores per token row (message after message), the CRF's layout
                c[f"{head.name}.em"] = nn.dense_forward(z, p[f"{head.name}.W"], p[f"{head.name}.b"])
            if s.token_pooling:
                # outputs are >= 0, so the zero padding of the grid never wins the max
                grid = np.zeros((n, batch.steps, z.shape[1]), dtype=z.dtype)
                grid[batch.token_b, batch.token_t] = z
                c["pool.arg"] = grid.argmax(axis=1)
                c["pool.out"] = grid.max(axis=1)
        if s.intent_classification:
            h = c["sent.out"]
            for i in range(len(s.hidden_sizes)):
                pre_in = h
                h = nn.relu_forward(nn.dense_forward(h, p[f"hid{i}.W"], p[f"hid{i}.b"]))
                c[f"hid{i}.in"], c[f"hid{i}.h"] = pre_in, h
                h, c[f"hid{i}.mask"] = nn.dropout_forward(h, rate, rng)
            if s.token_pooling:
                pooled = c.get("pool.out")
                if pooled is None:
                    pooled = np.zeros((n, s.entity_hidden_size), dtype=h.dtype)
                h = np.concatenate([h, pooled], axis=1)
            c["emb.in"] = h
            emb = nn.dense_forward(h, p["emb.W"], p["emb.b"])
            labels, c["lab.caches"] = self.label_embeddings()
            if s.similarity == "cosine":
                emb_n, c["emb.norms"] = nn.l2_normalize_forward(emb)
                lab_n, c["lab.norms"] = nn.l2_normalize_forward(labels)
                c["emb.normed"], c["lab.normed"] = emb_n, lab_n
                emb, labels = emb_n, lab_n
            c["emb"], c["labels"] = emb, labels
        return c

    # --------------------------------------------------------- loss + backward
    def loss_and_gradients(
        self, batch: _Batch, rng: np.random.Generator | None, options: TrainingOptions
    ) -> tuple[float, dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Total loss, gradients, and the row indices of row-sparse gradients."""
        s, p = self.spec, self.params
        c = self.forward(batch, rng, options)
        grads: dict[str, np.ndarray] = {}
        rows: dict[str, np.ndarray] = {}
        total = 0.0
        n = batch.lengths.size
        tokens_on = self.uses_tokens and batch.sequence is not None
        d_z = np.zeros_like(c["ctx.out"]) if tokens_on else None
        d_sent = None
        if s.intent_classification and batch.labels is not None:
            candidates = None
            if options.loss.loss_type != "cross_entropy":
                candidates = nn.sample_negatives(
                    rng if rng is not None else np.random.default_rng(0),
                    batch.labels,
                    len(s.labels),
                    options.number_of_negative_examples,
                )
            res_sim = nn.similarity_loss(c["emb"], c["labels"], batch.labels, candidates, options.loss)
            total += res_sim.loss
            # parts of the loss (the sigmoid term) promote to double precision; the
            # layers below it stay in DTYPE
            d_emb, d_lab = res_sim.grad_inputs.astype(DTYPE), res_sim.grad_labels.astype(DTYPE)
            if s.similarity == "cosine":
                d_emb = nn.l2_normalize_backward(c["emb.normed"], c["emb.norms"], d_emb)
                d_lab = nn.l2_normalize_backward(c["lab.normed"], c["lab.norms"], d_lab)
            d_h, grads["emb.W"], grads["emb.b"] = nn.dense_backward(c["emb.in"], p["emb.W"], d_emb)
            if s.token_pooling:
                width = d_h.shape[1] - s.entity_hidden_size
                d_pool = d_h[:, width:]
                d_h = d_h[:, :width]
                if d_z is not None:
                    # route each pooled unit's gradient to the token that won the max
                    d_grid = np.zeros((n, batch.steps, s.entity_hidden_size), dtype=d_z.dtype)
                    b_idx = np.arange(n)[:, None]
                    f_idx = np.arange(s.entity_hidden_size)[None, :]
                    d_grid[b_idx, c["pool.arg"], f_idx] = d_pool
                    d_z += d_grid[batch.token_b, batch.token_t]
            for i in reversed(range(len(s.hidden_sizes))):
                d_h = nn.relu_backward(c[f"hid{i}.h"], nn.dropout_backward(c[f"hid{i}.mask"], d_h))
                d_h, grads[f"hid{i}.W"], grads[f"hid{i}.b"] = nn.dense_backward(
                    c[f"hid{i}.in"], p[f"hid{i}.W"], d_h
                )
            d_sent = d_h
            for i in reversed(range(len(c["lab.caches"]))):
                _, x = c["lab.caches"][i]
                d_x, grads[f"labhid{i}.W"], grads[f"labhid{i}.b"] = nn.dense_backward(x, p[f"labhid{i}.W"], d_lab)
                d_lab = nn.relu_backward(x, d_x)
            grads["lab.table"] = d_lab
        if tokens_on:
            assert d_z is not None and batch.sequence is not None
            # the intent loss's share of the token context (pooling), kept apart so only
            # it trains the sentence layer through the context's sentence input
            d_z_intent = d_z.copy() if s.token_pooling else None
            for head in s.heads:
                params = self.crf_params(head.name)
                res = crf.token_nll_and_gradients(
                    np.asarray(c[f"{head.name}.em"], dtype=np.float64), batch.tags[head.name], batch.lengths,
                    params, np.full(n, 1.0 / n)
                )
                total += res.loss
                d_em = res.emissions.astype(d_z.dtype)
                dz_h, grads[f"{head.name}.W"], grads[f"{head.name}.b"] = nn.dense_backward(
                    c["ctx.out"], p[f"{head.name}.W"], d_em
                )
                d_z += dz_h
                grads[f"{head.name}.trans"] = res.transitions
                grads[f"{head.name}.start"] = res.start
                grads[f"{head.name}.end"] = res.end
            d_z = nn.relu_backward(c["ctx.h"], nn.dropout_backward(c["ctx.mask"], d_z))
            d_ctx_in, grads["ctx.W"], grads["ctx.b"] = nn.dense_backward(c["ctx.in"], p["ctx.W"], d_z)
            width = s.entity_hidden_size
            d_g = np.zeros((d_z.shape[0], width), dtype=d_z.dtype)
            for j, k in enumerate(s.offsets):
                _neighbours_backward(d_g, d_ctx_in[:, j * width : (j + 1) * width], batch, k)
            if s.intent_classification:
                d_seg = _segment_sum(d_z, batch.lengths)
                grads["ctx.S"] = c["sent.out"].T @ d_seg
                # the entity heads read the sentence vector but do not train the
                # sentence layer, which belongs to the intent loss (on snips2017 with
                # one seed: intents 0.9785 with their gradient, 0.9857 without, at the
                # same entity F1; seeds alone move that score by up to 0.007)
                if d_z_intent is not None:
                    d_pre = nn.relu_backward(c["ctx.h"], nn.dropout_backward(c["ctx.mask"], d_z_intent))
                    from_tokens = _segment_sum(d_pre, batch.lengths) @ p["ctx.S"].T
                    d_sent = from_tokens if d_sent is None else d_sent + from_tokens
            d_g = nn.dropout_backward(c["tok.mask"], d_g)
            if batch.token_inverse is not None:
                d_g = _sum_by_index(d_g, batch.token_inverse, c["tok.h"].shape[0])
            d_g = nn.relu_backward(c["tok.h"], d_g)
            grads["tok.W"], grads["tok.b"] = nn.sparse_dense_backward(batch.sequence, d_g)
            rows["tok.W"] = batch.sequence.columns
        if s.intent_classification and d_sent is not None:
            d_sent = nn.relu_backward(c["sent.h"], nn.dropout_backward(c["sent.mask"], d_sent))
            grads["sent.W"], grads["sent.b"] = nn.sparse_dense_backward(batch.sentence, d_sent)
            rows["sent.W"] = batch.sentence.columns
        return total, grads, rows

    # ------------------------------------------------------------------ training
    def fit(self, data: EncodedData, options: TrainingOptions,
            start: dict[str, np.ndarray] | None = None) -> list[float]:
        """Train with Adam on linearly growing minibatches; returns the loss per epoch.

        `start` (finetuning) replaces the initial weights; `initialise` still runs, with
        the same seed, so the connection masks are those the start weights were trained
        under and the random draws of training follow the same sequence.
        """
        rng = np.random.default_rng(options.seed)
        self.initialise(rng, options.connection_density)
        if start is not None:
            self.params = {name: np.array(start[name], dtype=DTYPE) for name in self.params}
        optimizer = nn.Adam(options.learning_rate)
        n = len(data)
        history: list[float] = []
        reg = options.regularization
        averaged: dict[str, np.ndarray] = {}
        n_averaged = 0
        for epoch in range(options.epochs):
            size = _batch_size(options.batch_size, epoch, options.epochs)
            order = epoch_order(n, data.labels, size, rng, options.batch_strategy)
            epoch_loss = 0.0
            for begin in range(0, order.size, size):
                idx = order[begin : begin + size]
                input_drop = options.drop_rate if options.sparse_input_dropout else 0.0
                batch = self.make_batch(data, idx, rng, input_drop)
                loss, grads, rows = self.loss_and_gradients(batch, rng, options)
                grads = {k: g.astype(DTYPE, copy=False) for k, g in grads.items()}
                if reg > 0:
                    for name, grad in grads.items():
                        if name.endswith(".W") or name == "lab.table":
                            weight = self.params[name]
                            grad += reg * (weight[rows[name]] if name in rows else weight)
                optimizer.step(self.params, grads, rows, self.masks)
                epoch_loss += loss * idx.size
            history.append(epoch_loss / max(order.size, 1))
            report_epoch(epoch + 1, options.epochs, history[-1])
            if options.average_from is not None and epoch >= options.average_from * options.epochs:
                for name, value in self.params.items():
                    if name in averaged:
                        averaged[name] += value
                    else:
                        averaged[name] = value.astype(np.float64)
                n_averaged += 1
        if n_averaged:
            self.params = {name: (total / n_averaged).astype(DTYPE) for name, total in averaged.items()}
        return history

    # ---------------------------------------------------------------- prediction
    def predict(
        self, data: EncodedData, chunk: int = 512
    ) -> tuple[np.ndarray | None, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """Label confidences (n x L) and per head (tag ids, tag confidences) per token row."""
        n = len(data)
        probs = np.zeros((n, len(self.spec.labels))) if self.spec.intent_classification else None
        total_tokens = int(data.token_offsets[-1])
        heads = {
            h.name: (np.zeros(total_tokens, np.int64), np.zeros(total_tokens)) for h in self.spec.heads
        }
        for begin in range(0, n, chunk):
            rows = np.arange(begin, min(n, begin + chunk))
            batch = self.make_batch(data, rows)
            c = self.forward(batch, None, None)
            if probs is not None:
                probs[rows] = nn.softmax(c["emb"] @ c["labels"].T)
            if self.uses_entities and batch.sequence is not None:
                token_rows = np.repeat(data.token_offsets[rows], batch.lengths) + batch.token_t
                for head in self.spec.heads:
                    params = self.crf_params(head.name)
                    emissions = c[f"{head.name}.em"].astype(np.float64)
                    path, _ = crf.token_viterbi(emissions, batch.lengths, params)
                    heads[head.name][0][token_rows] = path
                    heads[head.name][1][token_rows] = crf.token_confidences(emissions, batch.lengths, params, path)
        return probs, heads


def _sum_by_index(values: np.ndarray, index: np.ndarray, n_out: int) -> np.ndarray:
    """`out[index[i]] += values[i]` for all i, as one sort and one segment sum."""
    order = np.argsort(index, kind="stable")
    counts = np.bincount(index, minlength=n_out)
    out = np.zeros((n_out, values.shape[1]), dtype=values.dtype)
    present = np.flatnonzero(counts)
    starts = (np.cumsum(counts) - counts)[present]
    if present.size:
        out[present] = np.add.reduceat(values[order], starts, axis=0)
    return out


def _segment_sum(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sum consecutive row groups of the given lengths (zero rows for empty groups)."""
    out = np.zeros((lengths.size, values.shape[1]), dtype=values.dtype)
    nonempty = np.flatnonzero(lengths > 0)
    if nonempty.size:
        starts = (np.cumsum(lengths) - lengths)[nonempty]
        out[nonempty] = np.add.reduceat(values, starts, axis=0)
    return out


def _outside(batch: _Batch, offset: int) -> np.ndarray:
    """Token rows whose neighbour `offset` positions away lies outside their message."""
    target = batch.token_t + offset
    return np.flatnonzero((target < 0) | (target >= batch.lengths[batch.token_b]))


def _neighbours(g: np.ndarray, batch: _Batch, offset: int) -> np.ndarray:
    """Per token row, the hidden vector of the token `offset` positions away in the same
    message (zeros past either end). Works on the flat token rows, so no padding is
    ever computed: token rows are message after message, so the neighbours are the rows
    shifted by `offset` (one contiguous copy), except near message ends."""
    if offset == 0:
        return g
    out = np.zeros_like(g)
    n = g.shape[0]
    if abs(offset) < n:
        if offset > 0:
            out[: n - offset] = g[offset:]
        else:
            out[-offset:] = g[: n + offset]
    out[_outside(batch, offset)] = 0.0
    return out


def _neighbours_backward(d_g: np.ndarray, d_part: np.ndarray, batch: _Batch, offset: int) -> None:
    """Accumulate the gradient of `_neighbours` into `d_g`: the opposite shift, with the
    rows whose neighbour was outside their message left out (zeroed in a copy, so the
    sums are exactly those of adding the valid rows alone)."""
    if offset == 0:
        d_g += d_part
        return
    n = d_g.shape[0]
    if abs(offset) >= n:
        return
    part = d_part.copy()
    part[_outside(batch, offset)] = 0.0
    if offset > 0:
        d_g[offset:] += part[: n - offset]
    else:
        d_g[: n + offset] += part[-offset:]


def _batch_size(sizes: tuple[int, int], epoch: int, epochs: int) -> int:
    """Rasa's linearly increasing batch size from sizes[0] at the first epoch to sizes[1]."""
    low, high = sizes
    if epochs <= 1:
        return max(int(low), 1)
    return max(int(low + epoch * (high - low) / (epochs - 1)), 1)


def _as_pair(value: Any) -> tuple[int, int]:
    if isinstance(value, list | tuple):
        if len(value) == 1:
            return int(value[0]), int(value[0])
        return int(value[0]), int(value[1])
    return int(value), int(value)


def _layer_sizes(value: Any, key: str) -> list[int]:
    if isinstance(value, dict):
        value = value.get(key, [])
    return [int(v) for v in (value or [])]


def _dimension(value: Any, key: str, fallback: int) -> int:
    if isinstance(value, dict):
        return int(value.get(key, fallback))
    if value is None:
        return fallback
    return int(value)


def training_options(config: dict[str, Any]) -> TrainingOptions:
    """The optimisation settings of a merged DIET / ResponseSelector config."""
    density = config.get("connection_density")
    if config.get("weight_sparsity") is not None:
        # the older option: fraction of weights removed
        density = 1.0 - float(config["weight_sparsity"])
    loss_type = config["loss_type"]
    if loss_type not in ("cross_entropy", "margin", "softmax"):
        raise ConfigError(f"loss_type '{loss_type}' is not supported (use cross_entropy or margin)")
    return TrainingOptions(
        epochs=int(config["epochs"]),
        batch_size=_as_pair(config["batch_size"]),
        learning_rate=float(config["learning_rate"]),
        drop_rate=float(config["drop_rate"]),
        hidden_drop_rate=float(config["drop_rate"] if config.get("hidden_drop_rate") is None else config["hidden_drop_rate"]),
        sparse_input_dropout=bool(config["use_sparse_input_dropout"]),
        connection_density=float(1.0 if density is None else density),
        regularization=float(config["regularization_constant"]),
        loss=nn.SimilarityLossConfig(
            loss_type="cross_entropy" if loss_type == "softmax" else loss_type,
            maximum_positive_similarity=float(config["maximum_positive_similarity"]),
            maximum_negative_similarity=float(config["maximum_negative_similarity"]),
            use_maximum_negative_similarity=bool(config["use_maximum_negative_similarity"]),
            constrain_similarities=bool(config["constrain_similarities"]),
            scale_loss=bool(config["scale_loss"]),
        ),
        number_of_negative_examples=int(config["number_of_negative_examples"]),
        seed=int(config["random_seed"]) if config.get("random_seed") is not None else 0,
        average_from=None if config.get("weight_averaging") is None else float(config["weight_averaging"]),
        batch_strategy=str(config.get("batch_strategy", SEQUENCE)),
    )


def similarity_kind(config: dict[str, Any]) -> str:
    """Rasa's `similarity_type: auto`: inner product for cross-entropy, cosine for margin."""
    kind = config.get("similarity_type", "auto")
    if kind == "auto":
        return "cosine" if config["loss_type"] == "margin" else "inner"
    if kind not in ("inner", "cosine"):
        raise ConfigError(f"similarity_type '{kind}' is not supported")
    return kind


def check_common_config(owner: str, config: dict[str, Any]) -> None:
    """Fail early on option values trainkit cannot honour."""
    if config["model_confidence"] != "softmax":
        raise ConfigError(f"{owner}: model_confidence '{config['model_confidence']}' is not supported; use softmax")
    training_options(config)
    similarity_kind(config)
    if int(config["epochs"]) < 0:
        raise ConfigError(f"{owner}: epochs must not be negative")


def ranking(
    probabilities: np.ndarray, labels: list[str], ranking_length: int, renormalize: bool
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The best label and the ranking (truncated to `ranking_length` when positive).

    With `renormalize_confidences` the kept confidences are rescaled to sum to one, as
    Rasa does after cutting the ranking.
    """
    order = np.argsort(-probabilities, kind="stable")
    if ranking_length > 0:
        order = order[:ranking_length]
    conf = probabilities[order]
    if renormalize and ranking_length > 0 and conf.sum() > 0:
        conf = conf / conf.sum()
    ranked = [{"name": labels[j], "confidence": float(v)} for j, v in zip(order, conf, strict=True)]
    return dict(ranked[0]), ranked


def training_scaling(batch: MessageBatch, base: Artifact | None = None) -> dict[str, DenseScaling]:
    """Standardisation of the dense blocks of the training batch (see `dense_scaling`).

    A finetuning run keeps its base model's, so the weights it starts from see their
    inputs on the scale they learned them.
    """
    if base is not None:
        stored = base.json(MODEL_FILE)
        if not stored.get("empty") and "dense_scaling" in stored.get("spec", {}):
            return stored["spec"]["dense_scaling"]
    return {"sentence": dense_scaling(batch.sentence_features), "sequence": dense_scaling(batch.sequence_features)}


def protected_columns(batch: MessageBatch, config: dict[str, Any]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Columns sparse input dropout must leave alone: the dense ones, as Rasa keeps dense
    inputs unless `use_dense_input_dropout`."""
    if config.get("use_dense_input_dropout"):
        return None, None
    return dense_columns(batch.sentence_features), dense_columns(batch.sequence_features)


def encode_batch(batch: MessageBatch, spec: NetworkSpec) -> EncodedData:
    """Prediction-time inputs of a batch, checked against the trained feature widths."""
    scaling = spec.dense_scaling
    sentence = sentence_matrix(batch, scaling.get("sentence"))
    sequence = sequence_matrix(batch, scaling.get("sequence"))
    if spec.intent_classification and sentence.shape[1] != spec.sentence_dim:
        raise ValueError(f"sentence features have {sentence.shape[1]} columns, the model was trained on {spec.sentence_dim}")
    if (spec.heads or spec.token_pooling) and sequence.shape[1] != spec.sequence_dim:
        raise ValueError(f"sequence features have {sequence.shape[1]} columns, the model was trained on {spec.sequence_dim}")
    return EncodedData(sentence, sequence, np.asarray(batch.token_offsets, np.int64))


def base_weights(owner: str, base: Artifact | None, spec: NetworkSpec) -> dict[str, np.ndarray] | None:
    """The weights a finetuning run starts from, after checking they fit `spec`.

    The labels are already known to match (finetuning checks them before training); what
    can still differ is what the featurizers produce, e.g. a vocabulary that grew.
    """
    if base is None:
        return None
    if base.json(MODEL_FILE).get("empty"):
        raise TrainkitError(f"{owner}: the model to finetune learned nothing here; train from scratch")
    network, _ = load_network(base)
    old, new = network.spec.as_dict(), spec.as_dict()
    differing = sorted(k for k in new if old.get(k) != new[k])
    if differing:
        detail = ", ".join(f"{k} {old.get(k)!r} -> {new[k]!r}" if k.endswith("_dim") else k for k in differing)
        hint = (" (a featurizer produces more features than before: set CountVectorsFeaturizer's "
                "additional_vocabulary_size to leave room for new words)") if any(k.endswith("_dim") for k in differing) else ""
        raise TrainkitError(f"{owner}: cannot finetune: the network would differ from the model's ({detail}){hint}")
    for name, value in network.params.items():
        if not np.all(np.isfinite(value)):
            raise TrainkitError(f"{owner}: cannot finetune: the model's weights '{name}' are not finite")
    return network.params


def save_network(out: ArtifactWriter, network: Network, extra: dict[str, Any]) -> None:
    """Write the spec (JSON) and weights (npz); masks are baked into the weights."""
    out.json(MODEL_FILE, {"spec": network.spec.as_dict(), **extra})
    out.arrays(WEIGHTS_FILE, network.params)


def load_network(model: Artifact) -> tuple[Network, dict[str, Any]]:
    """Inverse of `save_network`; returns the network and the rest of the model file."""
    meta = model.json(MODEL_FILE)
    spec = NetworkSpec.from_dict(meta.pop("spec"))
    return Network(spec, model.arrays(WEIGHTS_FILE)), meta


# =============================================================== the component


@register
class DIETClassifier(NLUComponent):
    """Dual Intent and Entity Transformer, with a windowed feed-forward encoder in
    place of the transformer (see the module docstring)."""

    name = "DIETClassifier"
    version = "1"
    roles: ClassVar[frozenset[str]] = frozenset({INTENT_CLASSIFIER, ENTITY_EXTRACTOR})
    trainable = True
    finetunable = True
    requires: ClassVar[tuple[str, ...]] = (FEATURIZER,)
    unsupported_options: ClassVar[frozenset[str]] = TRANSFORMER_OPTIONS
    defaults: ClassVar[dict[str, Any]] = {
        **COMMON_DEFAULTS,
        # Rasa's 0.001 leaves the transformer-less network short of where it generalises
        # best within the default config's 100 epochs (see the module docstring)
        "learning_rate": Option(0.005, LEARNING_RATE),
        "intent_classification": True,
        "entity_recognition": True,
        "BILOU_flag": True,
        "use_masked_language_model": False,
    }

    @classmethod
    def estimated_memory(cls, config: dict[str, Any]) -> int:
        return estimated_network_memory(config)

    def __init__(self, config: dict[str, Any], network: Network | None = None, meta: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        check_common_config(self.name, config)
        self.network = network
        self.meta = meta or {}

    # ----------------------------------------------------------------- training
    def train(self, inputs: Inputs, out: ArtifactWriter) -> None:
        training_data, batch = training_batch(inputs)
        base = inputs.get(BASE_MODEL)
        assert not isinstance(base, list)
        network = self.fit(training_data, batch, base)
        if network is None:
            out.json(MODEL_FILE, {"empty": True})
            return
        save_network(out, network, {"bilou": bool(self.config["BILOU_flag"])})

    def fit(self, training_data: TrainingData, batch: MessageBatch, base: Artifact | None = None) -> Network | None:
        """Train on a featurized batch of the featurizable examples (rows aligned).

        Returns None when there is nothing to learn (no intents and no entities).
        """
        config = self.config
        examples = featurizable_examples(training_data)
        rows = np.asarray([i for i, m in enumerate(examples) if m.is_nlu_example], np.int64)
        scaling = training_scaling(batch, base)
        sentence = sentence_matrix(batch, scaling["sentence"])
        sequence = sequence_matrix(batch, scaling["sequence"])
        if rows.size == 0:
            return None
        used = [examples[i] for i in rows]
        intents = sorted({m.intent for m in used if m.intent})
        intent_on = bool(config["intent_classification"]) and bool(intents) and sentence.shape[1] > 0
        has_entities = any(m.entities for m in used)
        entity_on = bool(config["entity_recognition"]) and has_entities and sequence.shape[1] > 0
        if not intent_on and not entity_on:
            return None
        pooling = intent_on and bool(config["use_token_context"]) and sequence.shape[1] > 0
        bilou = bool(config["BILOU_flag"])
        tokens = [batch.tokens[i] for i in rows]
        heads: list[TagHead] = []
        tag_ids: dict[str, np.ndarray] = {}
        if entity_on:
            per_head = {
                "entity": [entity_tags(t, m, bilou) for t, m in zip(tokens, used, strict=True)],
                "role": [token_labels(t, m, "role") for t, m in zip(tokens, used, strict=True)],
                "group": [token_labels(t, m, "group") for t, m in zip(tokens, used, strict=True)],
            }
            for name in ENTITY_HEADS:
                values = sorted({tag for seq in per_head[name] for tag in seq} - {NO_ENTITY})
                if not values:
                    continue
                tags = [NO_ENTITY, *values]
                index = {t: i for i, t in enumerate(tags)}
                heads.append(TagHead(name, tags))
                tag_ids[name] = np.asarray([index[t] for seq in per_head[name] for t in seq], np.int64)
        offsets = np.asarray(batch.token_offsets, np.int64)
        lengths = offsets[rows + 1] - offsets[rows]
        sub_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        token_rows = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in rows]).astype(np.int64)
        labels = np.asarray([intents.index(m.intent) for m in used], np.int64) if intent_on else None
        tokens_used = entity_on or pooling
        token_matrix = sequence.take_rows(token_rows) if tokens_used else CSR.empty(int(lengths.sum()), sequence.shape[1])
        data = EncodedData(
            sentence.take_rows(rows),
            token_matrix,
            sub_offsets,
            labels,
            tag_ids,
            duplicate_row_ids(token_matrix) if tokens_used else None,
            *protected_columns(batch, config),
        )
        spec = NetworkSpec(
            sentence_dim=sentence.shape[1],
            sequence_dim=sequence.shape[1],
            labels=intents if intent_on else [],
            heads=heads,
            dense_dimension=_dimension(config["dense_dimension"], "text", 256),
            hidden_sizes=_layer_sizes(config["hidden_layers_sizes"], "text"),
            label_hidden_sizes=_layer_sizes(config["hidden_layers_sizes"], "label"),
            embedding_dimension=int(config["embedding_dimension"]),
            entity_hidden_size=int(config["entity_hidden_size"]),
            context_window=int(config["entity_context_window"]),
            similarity=similarity_kind(config),
            intent_classification=intent_on,
            token_pooling=pooling,
            dense_scaling=scaling,
        )
        network = Network(spec)
        network.fit(data, training_options(config), base_weights(self.name, base, spec))
        self.network = network
        self.meta = {"bilou": bilou}
        return network

    # --------------------------------------------------------------- prediction
    @classmethod
    def load(cls, config: dict[str, Any], model: Artifact | None) -> Component:
        if model is None or model.json(MODEL_FILE).get("empty"):
            return cls(config)
        network, meta = load_network(model)
        return cls(config, network, meta)

    def process(self, batch: MessageBatch) -> None:
        if self.network is None or len(batch) == 0:
            return
        spec = self.network.spec
        probs, heads = self.network.predict(encode_batch(batch, spec))
        offsets = batch.token_offsets
        for i, text in enumerate(batch.texts):
            if probs is not None:
                top, ranked = ranking(
                    probs[i],
                    spec.labels,
                    int(self.config["ranking_length"]),
                    bool(self.config["renormalize_confidences"]),
                )
                batch.intent[i] = top
                batch.intent_ranking[i] = ranked
            if heads:
                lo, hi = int(offsets[i]), int(offsets[i + 1])
                per_head = {
                    h.name: ([h.tags[j] for j in heads[h.name][0][lo:hi]], heads[h.name][1][lo:hi].tolist())
                    for h in spec.heads
                }
                found = build_entities(text, batch.tokens[i], per_head, self.name, self.config["split_entities_by_comma"])
                batch.entities[i] = list(batch.entities[i]) + found
