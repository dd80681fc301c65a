"""LexicalSyntacticFeaturizer: one-hot token shape features over a sliding window.

`pos` and `pos2` read the part-of-speech tag a tokenizer put on the token (SpacyTokenizer
does, from spaCy's fine-grained tags; `pos2` is its first two letters). A token without
a tag has no value for them, and training on tokens none of which has one says so.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, ClassVar

from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.engine.component import Component, Inputs, register
from trainkit.engine.graph import BASE_MODEL
from trainkit.engine.options import ListOf, OfType, Option, strings
from trainkit.errors import ConfigError
from trainkit.ml.sparse import CSR
from trainkit.nlu.base import Featurizer
from trainkit.nlu.batch import POS, FeatureSet, MessageBatch, Token, training_batch

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
    "pos": lambda token, i, n: token.data.get(POS),
    "pos2": lambda token, i, n: token.data[POS][:2] if token.data.get(POS) else None,
}
# Features that need a tokenizer giving part-of-speech tags (SpacyTokenizer).
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
                        value = FEATURES[feature](tokens[j], j, n)
                        if value is not None:  # a token without a tag has no pos value
                            keys.append(f"{w - half}|{feature}|{_value_key(value)}")
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
        self._warn_without_tags(batch)
        seen: set[str] = set()
        for tokens in batch.tokens:
            for keys in self._token_keys(tokens):
                seen.update(keys)
        self.feature_map = {key: i for i, key in enumerate(sorted(seen, key=self._sort_key))}
        out.json(FEATURE_MAP_FILE, {"feature_map": self.feature_map})

    def _warn_without_tags(self, batch: MessageBatch) -> None:
        """Say so when `pos`/`pos2` are asked for but no training token has a tag."""
        asked = sorted({f for window in self.windows for f in window if f in POS_FEATURES})
        if asked and not any(POS in token.data for tokens in batch.tokens for token in tokens):
            warnings.warn(
                f"LexicalSyntacticFeaturizer: the features {', '.join(repr(f) for f in asked)} need "
                "part-of-speech tags, and the tokens have none; SpacyTokenizer gives them (with a spaCy "
                "pipeline that tags). Training goes on without those features.", stacklevel=2)

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
