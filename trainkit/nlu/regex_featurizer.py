"""RegexFeaturizer: one binary feature per regex / lookup table of the training data."""

from __future__ import annotations

from typing import Any, ClassVar

from trainkit.engine.component import register
from trainkit.engine.options import OfType, Option
from trainkit.ml.sparse import CSR
from trainkit.nlu.base import Featurizer
from trainkit.nlu.batch import FeatureSet, MessageBatch
from trainkit.nlu.patterns import PatternLearner


@register
class RegexFeaturizer(PatternLearner, Featurizer):
    """Marks the tokens a pattern's matches overlap; a sentence gets a pattern if any token does.

    Column j is pattern j in the order persisted at training, so the features stay
    aligned with a trained classifier whatever the prediction input is.
    """

    name = "RegexFeaturizer"
    version = "1"
    trainable = True
    finetunable = True
    fixed_columns = True
    epoch_options: ClassVar[tuple[str, ...]] = ()
    defaults: ClassVar[dict[str, Any]] = {
        "case_sensitive": True,
        "use_lookup_tables": True,
        "use_regexes": True,
        "use_word_boundaries": True,
        "alias": Option(None, OfType((str,), null=True)),
    }
    # Only meaningful for incremental training, which trainkit does not do.
    unsupported_options: ClassVar[frozenset[str]] = frozenset({"number_additional_patterns"})

    def featurize(self, batch: MessageBatch) -> FeatureSet:
        """Binary (token x pattern) and (message x pattern) matrices."""
        n_patterns = len(self.patterns)
        seq_rows: list[int] = []
        seq_cols: list[int] = []
        sent_rows: list[int] = []
        sent_cols: list[int] = []
        offsets = batch.token_offsets
        for m, (text, tokens) in enumerate(zip(batch.texts, batch.tokens, strict=True)):
            if not tokens:
                continue
            for j, regex in enumerate(self._compiled):
                spans = [match.span() for match in regex.finditer(text) if match.end() > match.start()]
                if not spans:
                    continue
                hit = False
                for t, token in enumerate(tokens):
                    if any(token.start < end and token.end > start for start, end in spans):
                        seq_rows.append(int(offsets[m]) + t)
                        seq_cols.append(j)
                        hit = True
                if hit:
                    sent_rows.append(m)
                    sent_cols.append(j)
        n_tokens = int(offsets[-1])
        sequence = CSR.from_coo(seq_rows, seq_cols, None, (n_tokens, n_patterns))
        sentence = CSR.from_coo(sent_rows, sent_cols, None, (len(batch), n_patterns))
        return FeatureSet(self.origin, sentence, sequence, offsets, [p.name for p in self.patterns])

