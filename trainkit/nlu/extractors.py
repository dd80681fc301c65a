"""Entity extractors that need no statistical model: synonyms, regexes and Duckling."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from typing import Any, ClassVar

from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.engine.component import ENTITY_EXTRACTOR, Component, Inputs, register
from trainkit.engine.options import Float, OfType, Option, strings
from trainkit.errors import ConfigError
from trainkit.nlu.base import NLUComponent
from trainkit.nlu.batch import MessageBatch, load_training_data
from trainkit.nlu.patterns import PatternLearner

SYNONYMS_FILE = "synonyms.json"


@register
class EntitySynonymMapper(NLUComponent):
    """Maps extracted entity values to their canonical synonym value.

    Matching is case-insensitive on the whole value; mapped entities list this component
    under `processors`, which is how Rasa shows that a value was rewritten.
    """

    name = "EntitySynonymMapper"
    version = "1"
    roles: ClassVar[frozenset[str]] = frozenset({ENTITY_EXTRACTOR})
    trainable = True
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: dict[str, Any], synonyms: dict[str, str] | None = None) -> None:
        super().__init__(config)
        self.synonyms: dict[str, str] = dict(synonyms or {})

    def _add(self, original: str, replacement: str) -> None:
        if original == replacement:
            return
        key = original.lower()
        if key in self.synonyms and self.synonyms[key] != replacement:
            warnings.warn(
                f"{self.name}: conflicting synonyms for {key!r}: {self.synonyms[key]!r} is replaced "
                f"by {replacement!r}",
                stacklevel=3,
            )
        self.synonyms[key] = replacement

    def train(self, inputs: Inputs, out: ArtifactWriter) -> None:
        training_data = load_training_data(inputs["training_data"])  # type: ignore[arg-type]
        self.synonyms = {}
        for original, replacement in training_data.entity_synonyms.items():
            self._add(str(original), str(replacement))
        for example in training_data.training_examples:
            if not example.text:
                continue
            for entity in example.entities:
                self._add(example.text[entity.start : entity.end], str(entity.value))
        out.json(SYNONYMS_FILE, {"synonyms": self.synonyms})

    def replace(self, entities: list[dict[str, Any]]) -> None:
        """Rewrite synonym values in place."""
        for entity in entities:
            key = str(entity.get("value")).lower()
            if key in self.synonyms:
                entity["value"] = self.synonyms[key]
                entity["processors"] = [*entity.get("processors", []), self.name]

    def process(self, batch: MessageBatch) -> None:
        for entities in batch.entities:
            self.replace(entities)

    @classmethod
    def load(cls, config: dict[str, Any], model: Artifact | None) -> Component:
        if model is None:
            return cls(config)
        return cls(config, model.json(SYNONYMS_FILE)["synonyms"])


@register
class RegexEntityExtractor(PatternLearner, NLUComponent):
    """Extracts spans matching the regexes / lookup tables named after an entity type."""

    name = "RegexEntityExtractor"
    version = "1"
    roles: ClassVar[frozenset[str]] = frozenset({ENTITY_EXTRACTOR})
    trainable = True
    only_entity_patterns = True
    defaults: ClassVar[dict[str, Any]] = {
        "case_sensitive": False,
        "use_lookup_tables": True,
        "use_regexes": True,
        "use_word_boundaries": True,
    }

    def extract(self, text: str) -> list[dict[str, Any]]:
        """Entities of one text, pattern by pattern, matches left to right."""
        entities = []
        for pattern, regex in zip(self.patterns, self._compiled, strict=True):
            for match in regex.finditer(text):
                if match.end() == match.start():
                    continue
                entities.append(
                    {
                        "entity": pattern.name,
                        "start": match.start(),
                        "end": match.end(),
                        "value": text[match.start() : match.end()],
                        "extractor": self.name,
                    }
                )
        return entities

    def process(self, batch: MessageBatch) -> None:
        if not self.patterns:
            return
        for i, text in enumerate(batch.texts):
            batch.entities[i].extend(self.extract(text))



@register
class DucklingEntityExtractor(NLUComponent):
    """Asks a running Duckling server for structured entities (dates, amounts, ...).

    Nothing is learned. A server that cannot be reached at prediction time is reported
    once and yields no entities, so a missing side service degrades parsing instead of
    breaking it.
    """

    name = "DucklingEntityExtractor"
    version = "1"
    roles: ClassVar[frozenset[str]] = frozenset({ENTITY_EXTRACTOR})
    trainable = False
    defaults: ClassVar[dict[str, Any]] = {
        "dimensions": Option(None, strings(1_000, null=True)),
        "url": Option(None, OfType((str,), null=True)),
        "locale": Option(None, OfType((str,), null=True)),
        "timezone": Option(None, OfType((str,), null=True)),
        "timeout": Option(3, Float(0.0, 3600.0, open_low=True)),
    }
    URL_ENVIRONMENT = "RASA_DUCKLING_HTTP_URL"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        dimensions = config["dimensions"]
        if dimensions is not None and not (isinstance(dimensions, list) and all(isinstance(d, str) for d in dimensions)):
            raise ConfigError("DucklingEntityExtractor: 'dimensions' must be a list of dimension names")
        self._warned = False

    @property
    def url(self) -> str | None:
        """The server URL; the environment variable Rasa reads takes precedence."""
        return os.environ.get(self.URL_ENVIRONMENT) or self.config.get("url")

    def _request(self, text: str, reference_time_ms: int) -> list[dict[str, Any]]:
        form: dict[str, str] = {"text": text, "reftime": str(reference_time_ms)}
        if self.config.get("locale"):
            form["locale"] = str(self.config["locale"])
        if self.config.get("timezone"):
            form["tz"] = str(self.config["timezone"])
        request = urllib.request.Request(
            f"{str(self.url).rstrip('/')}/parse",
            data=urllib.parse.urlencode(form).encode("utf-8"),
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=float(self.config["timeout"])) as response:
            return json.loads(response.read().decode("utf-8"))

    def _warn_once(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(message, stacklevel=3)

    def convert(self, matches: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Duckling matches as Rasa entity dicts, filtered by `dimensions`."""
        dimensions = self.config["dimensions"]
        entities = []
        for match in matches:
            if dimensions and match.get("dim") not in dimensions:
                continue
            value_info = match.get("value") or {}
            if value_info.get("type") == "interval":
                value: Any = {"to": value_info.get("to", {}).get("value"), "from": value_info.get("from", {}).get("value")}
            else:
                value = value_info.get("value")
            entities.append(
                {
                    "start": match["start"],
                    "end": match["end"],
                    "text": match.get("body"),
                    "value": value,
                    "confidence": 1.0,
                    "additional_info": value_info,
                    "entity": match.get("dim"),
                    "extractor": self.name,
                }
            )
        return entities

    def process(self, batch: MessageBatch) -> None:
        if not self.url:
            self._warn_once(f"{self.name}: no 'url' configured; no Duckling entities are extracted")
            return
        reference = int(time.time() * 1000)
        for i, text in enumerate(batch.texts):
            try:
                matches = self._request(text, reference)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                self._warn_once(f"{self.name}: Duckling server at {self.url} is not reachable ({exc}); no entities")
                return
            batch.entities[i].extend(self.convert(matches))
