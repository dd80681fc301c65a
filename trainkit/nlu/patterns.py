"""Regex and lookup-table patterns, shared by RegexFeaturizer and RegexEntityExtractor."""

from __future__ import annotations

import re
from dataclasses import dataclass

from trainkit.data.training_data import TrainingData
from trainkit.errors import ConfigError

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
