"""Shared behaviour of NLU components: how tokenizers and featurizers meet the graph.

The process-node entry points (`process_training_data`) are written once here in terms
of the batch transform (`process`/`featurize`), which is what guarantees that the
training data is tokenized and featurized by exactly the code used at prediction time.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from trainkit.engine.artifact import ArtifactWriter
from trainkit.engine.component import FEATURIZER, TOKENIZER, Component, Inputs
from trainkit.errors import ConfigError
from trainkit.nlu.batch import (
    FeatureSet,
    MessageBatch,
    Token,
    featurizable_examples,
    load_training_data,
    training_batch,
    write_features,
    write_tokens,
)


class NLUComponent(Component):
    """A pipeline component that acts on a `MessageBatch` at prediction time."""

    def process(self, batch: MessageBatch) -> None:
        """Add this component's output to the batch (in place)."""
        raise NotImplementedError(f"{self.name} does not process messages")


class Tokenizer(NLUComponent):
    """Splits message texts into tokens with character offsets."""

    roles: ClassVar[frozenset[str]] = frozenset({TOKENIZER})
    trainable: ClassVar[bool] = False

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        pattern = config.get("token_pattern")
        try:
            self._token_pattern = re.compile(pattern) if pattern else None
        except re.error as exc:
            raise ConfigError(f"{self.name}: invalid token_pattern {pattern!r}: {exc}") from None

    def tokenize(self, text: str) -> list[Token]:
        """Tokens of one text."""
        raise NotImplementedError

    def split_label(self, label: str) -> list[str]:
        """Words of an intent or action name, per `intent_tokenization_flag`."""
        if self.config.get("intent_tokenization_flag"):
            words = [w for w in label.split(self.config.get("intent_split_symbol") or "_") if w]
            return words or [label]
        return [label]

    def apply_token_pattern(self, tokens: list[Token]) -> list[Token]:
        """Split tokens further into the pieces `token_pattern` matches (Rasa applies it
        after any tokenizer's own splitting)."""
        if self._token_pattern is None:
            return tokens
        result = []
        for token in tokens:
            pieces = [m for m in self._token_pattern.finditer(token.text) if m.group(0)]
            if not pieces:
                result.append(token)
                continue
            for match in pieces:
                start = token.start + match.start()
                # a lemma and a tag belong to the whole word, not to a piece of it
                whole = match.group(0) == token.text
                result.append(Token(match.group(0), start, start + len(match.group(0)),
                                    token.lemma if whole else None, dict(token.data) if whole else {}))
        return result

    def process(self, batch: MessageBatch) -> None:
        batch.tokens = [self.tokenize(text) for text in batch.texts]

    def process_training_data(self, inputs: Inputs, out: ArtifactWriter) -> None:
        training_data = load_training_data(inputs["training_data"])  # type: ignore[arg-type]
        batch = MessageBatch(texts=[m.text or "" for m in featurizable_examples(training_data)])
        self.process(batch)
        labels = sorted({m.intent for m in training_data.training_examples if m.intent})
        actions = sorted({m.action_name for m in training_data.training_examples if m.action_name})
        write_tokens(
            out,
            batch.tokens,
            {
                "intent_tokens": {label: self.split_label(label) for label in labels},
                "action_name_tokens": {name: self.split_label(name) for name in actions},
            },
        )


class Featurizer(NLUComponent):
    """Turns tokens into sentence and sequence feature matrices."""

    roles: ClassVar[frozenset[str]] = frozenset({FEATURIZER})
    requires: ClassVar[tuple[str, ...]] = (TOKENIZER,)

    @property
    def origin(self) -> str:
        """The name classifiers see the features under (Rasa's `alias`)."""
        alias = self.config.get("alias")
        return str(alias) if alias else self.name

    def featurize(self, batch: MessageBatch) -> FeatureSet:
        """Features of every message in the batch."""
        raise NotImplementedError

    def process(self, batch: MessageBatch) -> None:
        batch.add_features(self.featurize(batch))

    def process_training_data(self, inputs: Inputs, out: ArtifactWriter) -> None:
        base_inputs: dict[str, Any] = {k: v for k, v in inputs.items() if k != "features"}
        _, batch = training_batch(base_inputs)
        model = type(self).load(self.config, inputs.get("model")) if self.trainable else self  # type: ignore[arg-type]
        assert isinstance(model, Featurizer)
        write_features(out, model.featurize(batch))
