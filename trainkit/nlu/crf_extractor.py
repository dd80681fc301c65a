"""CRFEntityExtractor: a linear-chain CRF over hand-made token features.

Rasa's component feeds sklearn-crfsuite string features ("-1:low=hello") built from a
window of tokens around each position. Here every distinct feature string seen in
training becomes one binary column, the emission scores of a token are the sum of the
weights of its active columns (one sparse product), and the CRF of `trainkit.ml.crf`
supplies the likelihood and its gradient. The objective, negative log-likelihood plus
`L2_c` times half the squared weights plus `L1_c` times a smoothed absolute value, is
minimised with L-BFGS, which is deterministic. Separate CRFs learn roles and groups when
the data has them, as Rasa does. `text_dense_features` adds the dense sequence features
of upstream featurizers (word vectors) as real-valued columns per window position.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import numpy as np

from trainkit.data.training_data import TrainingData
from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.engine.component import ENTITY_EXTRACTOR, TOKENIZER, Component, Inputs, register
from trainkit.engine.graph import BASE_MODEL
from trainkit.engine.options import (
    MAX_ITERATIONS,
    NON_NEGATIVE,
    AnyOf,
    Int,
    ListOf,
    MapOf,
    OfType,
    Option,
    strings,
)
from trainkit.errors import ConfigError
from trainkit.ml import crf
from trainkit.ml.optim import lbfgs
from trainkit.ml.sparse import CSR
from trainkit.nlu.base import NLUComponent
from trainkit.nlu.batch import POS, MessageBatch, Token, featurizable_examples, training_batch
from trainkit.nlu.entity_tags import NO_ENTITY, build_entities, entity_tags, token_labels

MODEL_FILE = "crf_model.json"
WEIGHTS_FILE = "crf_weights.npz"

# Feature functions of one token; each returns a string value (or None for "absent").
_FEATURES: dict[str, Any] = {
    "low": lambda t: t.text.lower(),
    "title": lambda t: str(t.text.istitle()),
    "upper": lambda t: str(t.text.isupper()),
    "digit": lambda t: str(t.text.isdigit()),
    "prefix5": lambda t: t.text[:5],
    "prefix2": lambda t: t.text[:2],
    "suffix5": lambda t: t.text[-5:],
    "suffix3": lambda t: t.text[-3:],
    "suffix2": lambda t: t.text[-2:],
    "suffix1": lambda t: t.text[-1:],
    "bias": lambda t: "bias",
    # the tokenizer's part-of-speech tag (SpacyTokenizer's); a token without one has none
    "pos": lambda t: t.data.get(POS),
    "pos2": lambda t: t.data[POS][:2] if t.data.get(POS) else None,
}
# Features of other extractors' output, which Rasa's CRF reads and trainkit's does not.
_IGNORED_FEATURES = frozenset({"entity"})
# The dense sequence features of a token (word vectors, e.g. SpacyFeaturizer's), one real
# valued column per dimension and window position.
DENSE = "text_dense_features"


def _pattern_matches(text: str, tokens: list[Token], patterns: list[tuple[str, re.Pattern[str]]]) -> list[set[str]]:
    """Names of the regex / lookup patterns whose matches overlap each token."""
    found: list[set[str]] = [set() for _ in tokens]
    for name, pattern in patterns:
        for match in pattern.finditer(text):
            for i, token in enumerate(tokens):
                if token.start < match.end() and token.end > match.start():
                    found[i].add(name)
    return found


class TokenFeaturizer:
    """Turns tokens into crfsuite-style feature strings for a window of positions."""

    def __init__(self, windows: list[list[str]], patterns: list[tuple[str, re.Pattern[str]]]) -> None:
        if not windows or len(windows) % 2 == 0:
            raise ConfigError("CRFEntityExtractor: 'features' needs an odd number of window positions")
        self.windows = windows
        self.half = len(windows) // 2
        self.patterns = patterns

    def __call__(self, text: str, tokens: list[Token]) -> list[list[str]]:
        """Feature strings per token."""
        matches = _pattern_matches(text, tokens, self.patterns) if self.patterns else [set() for _ in tokens]
        out = []
        for i in range(len(tokens)):
            feats = []
            for w, names in enumerate(self.windows):
                offset = w - self.half
                j = i + offset
                for name in names:
                    if name == "BOS":
                        if j == 0:
                            feats.append(f"{offset}:BOS")
                        continue
                    if name == "EOS":
                        if j == len(tokens) - 1:
                            feats.append(f"{offset}:EOS")
                        continue
                    if not 0 <= j < len(tokens):
                        continue
                    if name == "pattern":
                        feats.extend(f"{offset}:pattern:{p}" for p in sorted(matches[j]))
                        continue
                    func = _FEATURES.get(name)
                    value = func(tokens[j]) if func is not None else None
                    if value is not None:
                        feats.append(f"{offset}:{name}:{value}")
            out.append(feats)
        return out


def _compile_patterns(training_data: TrainingData) -> list[tuple[str, str]]:
    """(name, regex) of the regex features and lookup tables, for the `pattern` feature."""
    patterns = [(r["name"], r["pattern"]) for r in training_data.regex_features]
    for table in training_data.lookup_tables:
        elements = [re.escape(e) for e in table["elements"] if e]
        if elements:
            patterns.append((table["name"], r"(?i)\b(" + "|".join(elements) + r")\b"))
    return patterns


def _start_point(start: tuple[dict[str, Any], dict[str, np.ndarray]] | None, head: str, tags: list[str],
                 vocabulary: list[str], n_features: int) -> np.ndarray | None:
    """A head's trained weights laid out for this vocabulary (None: start from zero).

    Binary features are matched by name; the dense columns after them keep their
    positions when their width is unchanged, and start from zero otherwise."""
    if start is None:
        return None
    state, weights = start
    old = next((h for h in state.get("heads", []) if h.get("name") == head), None)
    if old is None or old.get("tags") != tags:
        return None
    n_tags = len(tags)
    w = np.zeros((n_features, n_tags))
    position = {feature: i for i, feature in enumerate(vocabulary)}
    old_w = weights[f"{head}.W"]
    old_features = state.get("features", [])
    for j, feature in enumerate(old_features):
        i = position.get(feature)
        if i is not None and j < old_w.shape[0]:
            w[i] = old_w[j]
    old_dense = old_w[len(old_features):]
    if old_dense.shape[0] == n_features - len(vocabulary):
        w[len(vocabulary):] = old_dense
    rest = [weights[f"{head}.trans"].ravel(), weights[f"{head}.start"], weights[f"{head}.end"]]
    return np.concatenate([w.ravel(), *rest]).astype(np.float64)


@register
class CRFEntityExtractor(NLUComponent):
    """Conditional random field entity extractor (Rasa's CRFEntityExtractor)."""

    name = "CRFEntityExtractor"
    version = "1"
    roles: ClassVar[frozenset[str]] = frozenset({ENTITY_EXTRACTOR})
    trainable = True
    finetunable = True
    epoch_options: ClassVar[tuple[str, ...]] = ("max_iterations",)
    requires: ClassVar[tuple[str, ...]] = (TOKENIZER,)
    defaults: ClassVar[dict[str, Any]] = {
        "BILOU_flag": True,
        "split_entities_by_comma": Option(True, AnyOf((OfType((bool,)), MapOf(None, OfType((bool,)))))),
        "features": Option([
            ["low", "title", "upper"],
            ["low", "bias", "prefix5", "prefix2", "suffix5", "suffix3", "suffix2", "upper", "title", "digit", "pattern", "text_dense_features"],
            ["low", "title", "upper"],
        ], ListOf(strings(100), max_length=101)),
        "max_iterations": Option(50, Int(1, MAX_ITERATIONS)),
        "L1_c": Option(0.1, NON_NEGATIVE),
        "L2_c": Option(0.1, NON_NEGATIVE),
    }

    def __init__(self, config: dict[str, Any], state: dict[str, Any] | None = None,
                 weights: dict[str, np.ndarray] | None = None) -> None:
        super().__init__(config)
        features = config["features"]
        if not isinstance(features, list) or any(not isinstance(w, list) for w in features):
            raise ConfigError("CRFEntityExtractor: 'features' must be a list of lists of feature names")
        unknown = {f for w in features for f in w} - set(_FEATURES) - _IGNORED_FEATURES - {"BOS", "EOS", "pattern", DENSE}
        if unknown:
            raise ConfigError(f"CRFEntityExtractor: unknown features {sorted(unknown)}")
        self.state = state or {}
        self.weights = weights or {}
        self._featurizer: TokenFeaturizer | None = None
        self._index: dict[str, int] = {f: i for i, f in enumerate(self.state.get("features", []))}

    def featurizer(self) -> TokenFeaturizer:
        """The token featurizer with the patterns recorded at training time."""
        if self._featurizer is None:
            patterns = [(n, re.compile(p)) for n, p in self.state.get("patterns", [])]
            self._featurizer = TokenFeaturizer(self.config["features"], patterns)
        return self._featurizer

    def _dense_offsets(self) -> list[int]:
        """Window positions (relative to the token) that ask for dense features."""
        windows = self.config["features"]
        return [w - len(windows) // 2 for w, names in enumerate(windows) if DENSE in names]

    def _matrix(self, texts: list[str], tokens: list[list[Token]], dense: np.ndarray | None = None) -> CSR:
        """Feature matrix, one row per token of all messages in order: the binary feature
        columns, then the dense features of each window position asking for them."""
        featurize = self.featurizer()
        rows: list[int] = []
        cols: list[int] = []
        row = 0
        for text, toks in zip(texts, tokens, strict=True):
            for feats in featurize(text, toks):
                ids = sorted({self._index[f] for f in feats if f in self._index})
                cols.extend(ids)
                rows.extend([row] * len(ids))
                row += 1
        binary = CSR.from_coo(rows, cols, None, (row, len(self._index)))
        width = int(self.state.get("dense_width", 0))
        if not width:
            return binary
        if dense is None or dense.shape != (row, width):
            found = "none" if dense is None else f"{dense.shape[1]} columns"
            raise ConfigError(f"{self.name} was trained on {width} dense feature columns ({DENSE}) but got "
                              f"{found}; the pipeline's dense featurizers changed, retrain the model")
        lengths = np.asarray([len(t) for t in tokens], np.int64)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)  # first row of each token's message
        position = np.arange(row) - starts
        length = np.repeat(lengths, lengths)
        blocks = [binary]
        for offset in self._dense_offsets():
            block = np.zeros((row, width))
            inside = (position + offset >= 0) & (position + offset < length)
            block[inside] = dense[np.flatnonzero(inside) + offset]
            blocks.append(CSR.from_dense(block))
        return CSR.hstack(blocks)

    @staticmethod
    def _dense_features(batch: MessageBatch) -> np.ndarray | None:
        """The dense sequence features of the batch side by side, in pipeline order."""
        blocks = [m for m in batch.sequence_features.values() if isinstance(m, np.ndarray)]
        return np.hstack(blocks) if blocks else None

    # ----------------------------------------------------------------- training
    def train(self, inputs: Inputs, out: ArtifactWriter) -> None:
        wanted = inputs if self._dense_offsets() else {k: v for k, v in inputs.items() if k != "features"}
        training_data, batch = training_batch(wanted)
        base = inputs.get(BASE_MODEL)
        assert not isinstance(base, list)
        start = None
        if base is not None:
            loaded = CRFEntityExtractor.load(self.config, base)
            assert isinstance(loaded, CRFEntityExtractor)
            start = (loaded.state, loaded.weights)
        self.fit(training_data, batch, start)
        out.json(MODEL_FILE, self.state)
        if self.weights:
            out.arrays(WEIGHTS_FILE, self.weights)

    def fit(self, training_data: TrainingData, batch: MessageBatch,
            start: tuple[dict[str, Any], dict[str, np.ndarray]] | None = None) -> None:
        """Learn the CRFs from the featurizable examples with their tokens.

        `start` (finetuning: a trained model's state and weights) is where the optimiser
        starts; features the new data adds start at zero."""
        examples = featurizable_examples(training_data)
        rows = [i for i, m in enumerate(examples) if m.is_nlu_example and batch.tokens[i]]
        used = [examples[i] for i in rows]
        tokens = [batch.tokens[i] for i in rows]
        texts = [batch.texts[i] for i in rows]
        bilou = bool(self.config["BILOU_flag"])
        self.state = {"patterns": _compile_patterns(training_data), "features": [], "heads": []}
        self._featurizer = None
        if not any(m.entities for m in used):
            return
        featurize = self.featurizer()
        vocabulary = sorted({f for text, toks in zip(texts, tokens, strict=True) for feats in featurize(text, toks) for f in feats})
        self.state["features"] = vocabulary
        self._index = {f: i for i, f in enumerate(vocabulary)}
        dense = self._dense_features(batch) if self._dense_offsets() else None
        if dense is not None:
            token_rows = np.concatenate([np.arange(batch.token_offsets[i], batch.token_offsets[i + 1]) for i in rows])
            dense = dense[token_rows]
            self.state["dense_width"] = int(dense.shape[1])
        matrix = self._matrix(texts, tokens, dense)
        lengths = np.asarray([len(t) for t in tokens], np.int64)
        per_head = {
            "entity": [entity_tags(t, m, bilou) for t, m in zip(tokens, used, strict=True)],
            "role": [token_labels(t, m, "role") for t, m in zip(tokens, used, strict=True)],
            "group": [token_labels(t, m, "group") for t, m in zip(tokens, used, strict=True)],
        }
        for head, sequences in per_head.items():
            values = sorted({tag for seq in sequences for tag in seq} - {NO_ENTITY})
            if not values:
                continue
            tags = [NO_ENTITY, *values]
            index = {t: i for i, t in enumerate(tags)}
            flat = np.asarray([index[t] for seq in sequences for t in seq], np.int64)
            x0 = _start_point(start, head, tags, vocabulary, matrix.shape[1])
            self.weights.update(self._fit_head(head, matrix, lengths, flat, len(tags), x0))
            self.state["heads"].append({"name": head, "tags": tags})

    def _fit_head(self, head: str, matrix: CSR, lengths: np.ndarray, flat_tags: np.ndarray,
                  n_tags: int, x0: np.ndarray | None = None) -> dict[str, np.ndarray]:
        n_feat = matrix.shape[1]
        steps = int(lengths.max())
        n_seq = lengths.size
        seq_b = np.repeat(np.arange(n_seq), lengths)
        seq_t = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        grid_tags = np.zeros((n_seq, steps), np.int64)
        grid_tags[seq_b, seq_t] = flat_tags
        l1 = float(self.config["L1_c"])
        l2 = float(self.config["L2_c"])
        size_w = n_feat * n_tags
        matrix.transpose()

        def unpack(x: np.ndarray) -> tuple[np.ndarray, crf.CRFParams]:
            w = x[:size_w].reshape(n_feat, n_tags)
            rest = x[size_w:]
            trans = rest[: n_tags * n_tags].reshape(n_tags, n_tags)
            start = rest[n_tags * n_tags : n_tags * n_tags + n_tags]
            end = rest[n_tags * n_tags + n_tags :]
            return w, crf.CRFParams(trans, start, end)

        def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
            w, params = unpack(x)
            flat_em = matrix.matmul(w)
            emissions = np.zeros((n_seq, steps, n_tags))
            emissions[seq_b, seq_t] = flat_em
            res = crf.nll_and_gradients(emissions, grid_tags, lengths, params)
            grad_w = matrix.tmatmul(res.emissions[seq_b, seq_t])
            grad = np.concatenate([grad_w.ravel(), res.transitions.ravel(), res.start, res.end])
            # crfsuite's objective: penalties on all weights, not scaled by the data size
            smooth = np.sqrt(x * x + 1e-6)
            loss = res.loss + 0.5 * l2 * float(x @ x) + l1 * float(smooth.sum())
            grad = grad + l2 * x + l1 * x / smooth
            return loss, grad

        if x0 is None:
            x0 = np.zeros(size_w + n_tags * n_tags + 2 * n_tags)
        result = lbfgs(objective, x0, max_iter=int(self.config["max_iterations"]), gtol=1e-5)
        w, params = unpack(result.x)
        return {
            f"{head}.W": w.copy(),
            f"{head}.trans": params.transitions.copy(),
            f"{head}.start": params.start.copy(),
            f"{head}.end": params.end.copy(),
        }

    # --------------------------------------------------------------- prediction
    @classmethod
    def load(cls, config: dict[str, Any], model: Artifact | None) -> Component:
        if model is None:
            return cls(config)
        state = model.json(MODEL_FILE)
        weights = model.arrays(WEIGHTS_FILE) if state["heads"] else {}
        return cls(config, state, weights)

    def process(self, batch: MessageBatch) -> None:
        heads = self.state.get("heads", [])
        if not heads or len(batch) == 0:
            return
        matrix = self._matrix(batch.texts, batch.tokens, self._dense_features(batch))
        lengths = np.asarray([len(t) for t in batch.tokens], np.int64)
        steps = max(int(lengths.max()), 1)
        seq_b = np.repeat(np.arange(len(batch)), lengths)
        seq_t = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        decoded: dict[str, tuple[list[str], np.ndarray, np.ndarray]] = {}
        for head in heads:
            name, tags = head["name"], head["tags"]
            params = crf.CRFParams(self.weights[f"{name}.trans"], self.weights[f"{name}.start"], self.weights[f"{name}.end"])
            emissions = np.zeros((len(batch), steps, len(tags)))
            emissions[seq_b, seq_t] = matrix.matmul(self.weights[f"{name}.W"])
            path, _ = crf.viterbi(emissions, lengths, params)
            conf = crf.tag_confidences(emissions, lengths, params, path)
            decoded[name] = (tags, path[seq_b, seq_t], conf[seq_b, seq_t])
        for i, text in enumerate(batch.texts):
            lo, hi = int(offsets[i]), int(offsets[i + 1])
            if lo == hi:
                continue
            per_head = {
                name: ([tags[j] for j in path[lo:hi]], conf[lo:hi].tolist())
                for name, (tags, path, conf) in decoded.items()
            }
            found = build_entities(text, batch.tokens[i], per_head, self.name, self.config["split_entities_by_comma"])
            batch.entities[i] = list(batch.entities[i]) + found
