"""The in-memory model of NLU training data.

Messages are immutable and compare by their whole content (text, labels, entities,
metadata) so that exact duplicates collapse the way Rasa collapses them, while the file
and line they came from ride along for error messages without affecting equality.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

RESPONSE_KEY_DELIMITER = "/"


@dataclass(frozen=True)
class Entity:
    """One annotated entity span in a message's cleaned text.

    `value` is what extractors should report: the synonym value when the annotation sets
    one, otherwise the annotated text itself.
    """

    start: int
    end: int
    value: str
    entity: str
    role: str | None = None
    group: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Rasa's entity dict shape; role and group only appear when set, as Rasa writes them."""
        out: dict[str, Any] = {
            "start": self.start,
            "end": self.end,
            "value": self.value,
            "entity": self.entity,
        }
        if self.role:
            out["role"] = self.role
        if self.group:
            out["group"] = self.group
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entity:
        """Inverse of `as_dict`, so cached data round-trips unchanged."""
        return cls(
            start=int(data["start"]),
            end=int(data["end"]),
            value=data["value"],
            entity=data["entity"],
            role=data.get("role"),
            group=data.get("group"),
        )


def canonical_json(value: Any) -> str:
    """A stable text form of arbitrary JSON-like data, so equal content hashes equally."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def split_intent(full_intent: str) -> tuple[str, str | None]:
    """Separate a retrieval intent `faq/ask_name` into (`faq`, `faq/ask_name`).

    Plain intents give (intent, None). An empty response key (`faq/`) is not a retrieval
    intent, matching Rasa, which only records the full key when the part after `/` is set.
    """
    base, sep, key = full_intent.partition(RESPONSE_KEY_DELIMITER)
    if sep and key:
        return base, full_intent
    return base, None


@dataclass(frozen=True)
class Message:
    """One training example: a user utterance with its labels, or a bot action turn.

    `metadata` is kept as canonical JSON text so the message stays hashable; use
    `metadata_dict` to read it.
    """

    text: str | None = None
    intent: str | None = None
    intent_response_key: str | None = None
    entities: tuple[Entity, ...] = ()
    metadata: str | None = None
    action_name: str | None = None
    action_text: str | None = None
    path: str | None = field(default=None, compare=False)
    line: int | None = field(default=None, compare=False)

    @classmethod
    def build(
        cls,
        text: str | None,
        intent: str | None = None,
        entities: tuple[Entity, ...] | list[Entity] = (),
        intent_metadata: Any = None,
        example_metadata: Any = None,
        path: str | None = None,
        line: int | None = None,
    ) -> Message:
        """Make a user message the way Rasa's readers do.

        Retrieval intents are split so `intent` holds the base name; metadata is nested
        under `intent` / `example` keys as Rasa stores it, so two examples differing only
        in metadata stay distinct.
        """
        base: str | None = None
        response_key: str | None = None
        if intent:
            base, response_key = split_intent(intent.strip())
        meta: dict[str, Any] = {}
        if intent_metadata is not None:
            meta["intent"] = intent_metadata
        if example_metadata is not None:
            meta["example"] = example_metadata
        return cls(
            text=text,
            intent=base or None,
            intent_response_key=response_key,
            entities=tuple(entities),
            metadata=canonical_json(meta) if meta else None,
            path=path,
            line=line,
        )

    @property
    def metadata_dict(self) -> dict[str, Any] | None:
        """The metadata as data again (the stored form is text to keep messages hashable)."""
        return None if self.metadata is None else json.loads(self.metadata)

    @property
    def is_nlu_example(self) -> bool:
        """True for a pure NLU example: labelled text that did not come from a story action."""
        return bool(self.text and self.intent and not self.action_name and not self.action_text)

    @property
    def is_e2e(self) -> bool:
        """Rasa's notion of an end-to-end message: a bot text without an action name, or
        user text without an intent."""
        return bool(
            (self.action_text and not self.action_name) or (self.text and not self.intent)
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-able content without location, so the same data from differently laid out
        files gives the same dict."""
        out: dict[str, Any] = {}
        if self.text is not None:
            out["text"] = self.text
        if self.intent is not None:
            out["intent"] = self.intent
        if self.intent_response_key is not None:
            out["intent_response_key"] = self.intent_response_key
        if self.entities:
            out["entities"] = [e.as_dict() for e in self.entities]
        if self.metadata is not None:
            out["metadata"] = self.metadata_dict
        if self.action_name is not None:
            out["action_name"] = self.action_name
        if self.action_text is not None:
            out["action_text"] = self.action_text
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        """Inverse of `as_dict`."""
        metadata = data.get("metadata")
        return cls(
            text=data.get("text"),
            intent=data.get("intent"),
            intent_response_key=data.get("intent_response_key"),
            entities=tuple(Entity.from_dict(e) for e in data.get("entities", ())),
            metadata=None if metadata is None else canonical_json(metadata),
            action_name=data.get("action_name"),
            action_text=data.get("action_text"),
        )


def _dedup(messages: list[Message]) -> list[Message]:
    # dict keeps first-seen order, which is the order Rasa keeps after dropping duplicates
    return list(dict.fromkeys(messages))


def _merge_lookup_tables(tables: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold tables sharing a name into one, without repeated elements, in first-seen order."""
    merged: dict[str, dict[str, None]] = {}
    for table in tables:
        elements = merged.setdefault(table["name"], {})
        for element in table["elements"]:
            elements.setdefault(element, None)
    return [{"name": name, "elements": list(elements)} for name, elements in merged.items()]


def _sort_regex_features(features: list[dict[str, str]]) -> list[dict[str, str]]:
    # Rasa orders regex features by name and pattern, which fixes the order of the
    # regex feature columns regardless of file order.
    return sorted(features, key=lambda r: f"{r['name']}+{r['pattern']}")


@dataclass
class TrainingData:
    """Everything NLU training reads from the `nlu:` (and `responses:`) parts of a project.

    Construction normalises the data: duplicate examples are dropped, regex features put
    in Rasa's order and lookup tables of the same name folded together.
    """

    training_examples: list[Message] = field(default_factory=list)
    entity_synonyms: dict[str, str] = field(default_factory=dict)
    regex_features: list[dict[str, str]] = field(default_factory=list)
    lookup_tables: list[dict[str, Any]] = field(default_factory=list)
    responses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.training_examples = _dedup(list(self.training_examples))
        self.regex_features = _sort_regex_features(list(self.regex_features))
        self.lookup_tables = _merge_lookup_tables(list(self.lookup_tables))

    def merge(self, *others: TrainingData) -> TrainingData:
        """Combine several files' data; later files win on conflicting synonyms and
        responses, as in Rasa."""
        examples = list(self.training_examples)
        synonyms = dict(self.entity_synonyms)
        regexes = list(self.regex_features)
        lookups = list(self.lookup_tables)
        responses = dict(self.responses)
        for other in others:
            examples.extend(other.training_examples)
            synonyms.update(other.entity_synonyms)
            regexes.extend(other.regex_features)
            lookups.extend(other.lookup_tables)
            responses.update(other.responses)
        return TrainingData(examples, synonyms, regexes, lookups, responses)

    @property
    def nlu_examples(self) -> list[Message]:
        """Examples an NLU model learns from (not turns that came from stories or the domain)."""
        return [m for m in self.training_examples if m.is_nlu_example]

    @property
    def intents(self) -> list[str]:
        """Sorted distinct intents of the NLU examples."""
        return sorted({m.intent for m in self.nlu_examples if m.intent})

    @property
    def entity_types(self) -> list[str]:
        """Sorted distinct entity labels annotated in the NLU examples."""
        return sorted({e.entity for m in self.nlu_examples for e in m.entities})

    @property
    def retrieval_intents(self) -> list[str]:
        """Sorted base names of intents used as `base/response_key` retrieval intents."""
        return sorted(
            {m.intent for m in self.training_examples if m.intent_response_key and m.intent}
        )

    def has_e2e_examples(self) -> bool:
        """Whether any message needs end-to-end (text-based) featurisation."""
        return any(m.is_e2e for m in self.training_examples)

    def contains_no_pure_nlu_data(self) -> bool:
        """True when there is nothing for an NLU pipeline to learn from on its own."""
        return not (
            self.nlu_examples or self.entity_synonyms or self.regex_features or self.lookup_tables
        )

    def is_empty(self) -> bool:
        """True when no examples, synonyms, regexes or lookup tables were loaded."""
        return not (
            self.training_examples
            or self.entity_synonyms
            or self.regex_features
            or self.lookup_tables
        )

    def as_dict(self) -> dict[str, Any]:
        """Canonical JSON-able content.

        Built only from data (never from YAML layout or source lines), with synonyms and
        responses keyed in sorted order, so it can be hashed to fingerprint the content.
        Example order is kept because it is part of what a model sees.
        """
        return {
            "training_examples": [m.as_dict() for m in self.training_examples],
            "entity_synonyms": {k: self.entity_synonyms[k] for k in sorted(self.entity_synonyms)},
            "regex_features": [dict(r) for r in self.regex_features],
            "lookup_tables": [
                {"name": t["name"], "elements": list(t["elements"])} for t in self.lookup_tables
            ],
            "responses": json.loads(canonical_json(self.responses)),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingData:
        """Inverse of `as_dict`."""
        return cls(
            training_examples=[Message.from_dict(m) for m in data.get("training_examples", [])],
            entity_synonyms=dict(data.get("entity_synonyms", {})),
            regex_features=[dict(r) for r in data.get("regex_features", [])],
            lookup_tables=[
                {"name": t["name"], "elements": list(t["elements"])}
                for t in data.get("lookup_tables", [])
            ],
            responses={k: list(v) for k, v in data.get("responses", {}).items()},
        )
