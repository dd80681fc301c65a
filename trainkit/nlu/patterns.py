"""Regex and lookup-table patterns, shared by RegexFeaturizer and RegexEntityExtractor."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

from trainkit.data.training_data import TrainingData
from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.engine.component import Component, Inputs
from trainkit.engine.graph import BASE_MODEL
from trainkit.errors import ConfigError

PATTERNS_FILE = "patterns.json"

# Scripts written without spaces between words: word boundaries would never match inside.
NO_WORD_BOUNDARY_LANGUAGES = ("zh", "ja", "th")


@dataclass(frozen=True)
class Pattern:
    """A named regular expression (lookup tables become one alternation each)."""

    name: str
    pattern: str

    def as_dict(self) -> dict[str, str]:
        """JSON form for artifacts."""
        return {"name": self.name, "pattern": self.pattern}


def lookup_regex(elements: list[str], use_word_boundaries: bool = True) -> str:
    """One alternation of the escaped elements, each anchored at word boundaries if asked."""
    escaped = [re.escape(e) for e in elements]
    if use_word_boundaries:
        return "(" + "|".join(rf"\b{e}\b" for e in escaped) + ")"
    return "(" + "|".join(escaped) + ")"


def extract_patterns(
    training_data: TrainingData,
    use_lookup_tables: bool = True,
    use_regexes: bool = True,
    use_only_entities: bool = False,
    use_word_boundaries: bool = True,
) -> list[Pattern]:
    """Regex features first (in the data's order), then one pattern per lookup table.

    With `use_only_entities`, only patterns named like an annotated entity type are kept:
    that is how the entity extractor knows which label a match gets.
    """
    entity_types = set(training_data.entity_types)
    patterns: list[Pattern] = []
    if use_regexes:
        for regex in training_data.regex_features:
            if use_only_entities and regex["name"] not in entity_types:
                continue
            patterns.append(Pattern(regex["name"], regex["pattern"]))
    if use_lookup_tables:
        for table in training_data.lookup_tables:
            if use_only_entities and table["name"] not in entity_types:
                continue
            elements = [str(e) for e in table["elements"] if str(e)]
            if elements:
                patterns.append(Pattern(table["name"], lookup_regex(elements, use_word_boundaries)))
    return patterns


def compile_patterns(patterns: list[Pattern], case_sensitive: bool, owner: str) -> list[re.Pattern[str]]:
    """Compile once; a broken user regex is a config-level error naming the pattern."""
    flags = 0 if case_sensitive else re.IGNORECASE
    compiled = []
    for p in patterns:
        try:
            compiled.append(re.compile(p.pattern, flags))
        except re.error as exc:
            raise ConfigError(f"{owner}: regex '{p.name}' ({p.pattern!r}) does not compile: {exc}") from None
    return compiled


class PatternLearner(Component):
    """A component whose learned state is the training data's regexes and lookup tables.

    Listed before the NLU base class (`class X(PatternLearner, Featurizer)`), so training,
    persisting and loading the patterns is written once for the featurizer and the
    extractor.
    """

    # True for extractors: only patterns named like an entity type are kept.
    only_entity_patterns: ClassVar[bool] = False
    # True for featurizers: a pattern is a feature column, which a finetune must keep.
    fixed_columns: ClassVar[bool] = False

    def __init__(self, config: dict[str, Any], patterns: list[Pattern] | None = None) -> None:
        super().__init__(config)
        self._use_patterns(patterns or [])

    def _use_patterns(self, patterns: list[Pattern]) -> None:
        self.patterns = list(patterns)
        self._compiled = compile_patterns(self.patterns, bool(self.config["case_sensitive"]), self.name)

    def train(self, inputs: Inputs, out: ArtifactWriter) -> None:
        from trainkit.nlu.batch import load_training_data

        training_data = load_training_data(inputs["training_data"])  # type: ignore[arg-type]
        patterns = extract_patterns(
            training_data,
            use_lookup_tables=bool(self.config["use_lookup_tables"]),
            use_regexes=bool(self.config["use_regexes"]),
            use_only_entities=self.only_entity_patterns,
            use_word_boundaries=bool(self.config["use_word_boundaries"]),
        )
        if not patterns and self.only_entity_patterns:
            warnings.warn(
                f"{self.name}: no regex or lookup table is named like an entity of the training data; "
                "it will extract nothing",
                stacklevel=2,
            )
        base = inputs.get(BASE_MODEL)
        if base is not None and self.fixed_columns:
            assert not isinstance(base, list)
            patterns = self._keep_columns(base.json(PATTERNS_FILE)["patterns"], patterns)
        self._use_patterns(patterns)
        out.json(PATTERNS_FILE, {"patterns": [p.as_dict() for p in self.patterns]})

    def _keep_columns(self, stored: list[dict[str, Any]], found: list[Pattern]) -> list[Pattern]:
        """A finetune's patterns: the base model's, each updated from the new data where
        it still exists (a lookup table that grew), in the base's order; patterns with a
        new name would add a feature column the classifiers have no weight for."""
        by_name = {p.name: p for p in found}
        kept = [by_name.get(p["name"], Pattern(p["name"], p["pattern"])) for p in stored]
        new = sorted(set(by_name) - {p["name"] for p in stored})
        if new:
            warnings.warn(
                f"{self.name}: the patterns {', '.join(new)} are not in the model to finetune and are "
                "ignored; train from scratch to use them",
                stacklevel=3,
            )
        return kept

    @classmethod
    def load(cls, config: dict[str, Any], model: Artifact | None) -> Component:
        patterns: list[Pattern] = []
        if model is not None:
            patterns = [Pattern(p["name"], p["pattern"]) for p in model.json(PATTERNS_FILE)["patterns"]]
        return cls(config, patterns)
