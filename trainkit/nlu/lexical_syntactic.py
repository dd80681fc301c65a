"""LexicalSyntacticFeaturizer: one-hot token shape features over a sliding window."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.engine.component import Component, Inputs, register
from trainkit.engine.graph import BASE_MODEL
from trainkit.engine.options import ListOf, OfType, Option, strings
from trainkit.errors import ConfigError
from trainkit.ml.sparse import CSR
from trainkit.nlu.base import Featurizer
from trainkit.nlu.batch import FeatureSet, MessageBatch, Token, training_batch

FEATURE_MAP_FILE = "feature_map.json"

# Feature name -> function of (token, index in message, number of tokens).
FEATURES: dict[str, Callable[[Token, int, int], object]] = {
    "BOS": lambda token, i, n: i == 0,
    "EOS": lambda token, i, n: i == n - 1,
    "low": lambda token, i, n: token.text.islower(),
    "upper": lambda token, i, n: token.text.isupper(),
    "title": lambda token, i, n: token.text.istitle(),
    "digit": lambda token, i, n: token.text.isdigit(),
    "prefix5": lambda token, i, n: token.text[:5],
    "prefix2": lambda token, i, n: token.text[:2],
    "suffix5": lambda token, i, n: token.text[-5:],
    "suffix3": lambda token, i, n: token.text[-3:],
    "suffix2": lambda token, i, n: token.text[-2:],
    "suffix1": lambda token, i, n: token.text[-1:],
}
# Need a part-of-speech tagger (spaCy), which trainkit does not provide.
POS_FEATURES = ("pos", "pos2")


def _value_key(value: object) -> str:
    # JSON keys are strings; booleans and strings must not collide ("True" vs True)
    return f"b:{value}" if isinstance(value, bool) else f"s:{value}"


@register
class LexicalSyntacticFeaturizer(Featurizer):
    """Sequence features describing each token and its neighbours (casing, affixes, position).

    `features` is a list of windows positions, e.g. three lists for (before, at, after);
    each value seen in training for (position, feature) becomes one column. There are
    no sentence features, as in Rasa.
    """

    name = "LexicalSyntacticFeaturizer"
    version = "1"
    trainable = True
    # A finetune keeps the base model's feature columns, so the classifiers' weights fit.
    finetunable = True
    epoch_options: ClassVar[tuple[str, ...]] = ()
    defaults: ClassVar[dict[str, Any]] = {
        "features": Option([
            ["low", "title", "upper"],
            ["BOS", "EOS", "low", "upper", "title", "digit"],
            ["low", "title", "upper"],
        ], ListOf(strings(100), max_length=101)),
        "alias": Option(None, OfType((str,), null=True)),
    }

    def __init__(self, config: dict[str, Any], feature_map: dict[str, int] | None = None) -> None:
        super().__init__(config)
        windows = config["features"]
        if not isinstance(windows, list) or not windows or any(not isinstance(w, list) for w in windows):
            raise ConfigError("LexicalSyntacticFeaturizer: 'features' must be a list of lists of feature names")
        if len(windows) % 2 == 0:
            raise ConfigError("LexicalSyntacticFeaturizer: 'features' needs an odd number of window positions")
        for window in windows:
            for feature in window:
                if feature in POS_FEATURES:
                    raise ConfigError(
                        f"LexicalSyntacticFeaturizer: feature '{feature}' needs spaCy part-of-speech tags, "
                        "which trainkit does not provide; remove it from 'features'"
                    )
                if feature not in FEATURES:
                    raise ConfigError(
                        f"LexicalSyntacticFeaturizer: unknown feature '{feature}'; "
                        f"known: {', '.join(FEATURES)}"
                    )
        self.windows: list[list[str]] = windows
        self.feature_map: dict[str, int] = dict(feature_map or {})

    def _token_keys(self, tokens: list[Token]) -> list[list[str]]:
        """For each token, the (position, feature, value) keys it exhibits."""
        n = len(tokens)
        half = len(self.windows) // 2
        out = []
        for i in range(n):
            keys = []
            for w, window in enumerate(self.windows):
                j = i + w - half
                if 0 <= j < n:
                    for feature in window:
                        keys.append(f"{w - half}|{feature}|{_value_key(FEATURES[feature](tokens[j], j, n))}")
            out.append(keys)
        return out

    def train(self, inputs: Inputs, out: ArtifactWriter) -> None:
        base = inputs.get(BASE_MODEL)
        if base is not None:
            assert not isinstance(base, list)
            self.feature_map = {str(k): int(v) for k, v in base.json(FEATURE_MAP_FILE)["feature_map"].items()}
            out.json(FEATURE_MAP_FILE, {"feature_map": self.feature_map})
            return
        _, batch = training_batch({k: v for k, v in inputs.items() if k != "features"})
        seen: set[str] = set()
        for tokens in batch.tokens:
            for keys in self._token_keys(tokens):
                seen.update(keys)
        self.feature_map = {key: i for i, key in enumerate(sorted(seen, key=self._sort_key))}
        out.json(FEATURE_MAP_FILE, {"feature_map": self.feature_map})

    def _sort_key(self, key: str) -> tuple[int, int, str]:
        position, feature, value = key.split("|", 2)
        w = int(position) + len(self.windows) // 2
        return (w, self.windows[w].index(feature), value)

    def featurize(self, batch: MessageBatch) -> FeatureSet:
        """One-hot (token x feature value) matrix; unseen values get no column."""
        rows: list[int] = []
        cols: list[int] = []
        row = 0
        index = self.feature_map
        for tokens in batch.tokens:
            for keys in self._token_keys(tokens):
                ids = [index[k] for k in keys if k in index]
                cols.extend(ids)
                rows.extend([row] * len(ids))
                row += 1
        sequence = CSR.from_coo(rows, cols, None, (row, len(index)))
        names = sorted(index, key=index.__getitem__)
        return FeatureSet(self.origin, None, sequence, batch.token_offsets, names)

    @classmethod
    def load(cls, config: dict[str, Any], model: Artifact | None) -> Component:
        feature_map = None
        if model is not None:
            feature_map = model.json(FEATURE_MAP_FILE)["feature_map"]
        return cls(config, feature_map)
