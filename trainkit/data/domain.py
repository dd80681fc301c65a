"""The domain of an assistant (Rasa 3.x `domain.yml`).

The domain keeps what the user wrote and nothing more: defaults that Rasa adds when it
loads a domain (default intents, default actions) are exposed through properties instead
of being mixed into the written lists, so counts and error messages refer to the user's
own files. Every entry remembers the file and line it came from, so the consistency
checks (`trainkit.data.domain_checks`) can point at the line to fix. Files are read by
`trainkit.data.domain_reader`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

SLOT_TYPES = ("text", "bool", "categorical", "float", "list", "any")

MAPPING_TYPES = ("from_entity", "from_text", "from_intent", "from_trigger_intent", "custom")

# Keys a slot mapping of each type cannot work without.
MAPPING_REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "from_entity": ("entity",),
    "from_text": (),
    "from_intent": ("value",),
    "from_trigger_intent": ("value",),
    "custom": (),
}

MAPPING_KEYS = frozenset(
    {"type", "entity", "intent", "not_intent", "role", "group", "value", "conditions", "action"}
)

# Actions every Rasa assistant has, in the order Rasa indexes them.
DEFAULT_ACTIONS = (
    "action_listen",
    "action_restart",
    "action_session_start",
    "action_default_fallback",
    "action_deactivate_loop",
    "action_revert_fallback_events",
    "action_default_ask_affirmation",
    "action_default_ask_rephrase",
    "action_two_stage_fallback",
    "action_unlikely_intent",
    "action_back",
    "...",
    "action_extract_slots",
)

# Intents Rasa adds to every domain when it is loaded.
DEFAULT_INTENTS = ("restart", "back", "out_of_scope", "session_start", "nlu_fallback")

# A response variation must carry at least one of these to say anything.
RESPONSE_CONTENT_KEYS = (
    "text",
    "image",
    "buttons",
    "custom",
    "attachment",
    "elements",
    "quick_replies",
)

RETRIEVAL_DELIMITER = "/"

DEFAULT_SESSION_CONFIG: dict[str, Any] = {
    "session_expiration_time": 60,
    "carry_over_slots_to_new_session": True,
}

DOMAIN_KEYS = (
    "version",
    "intents",
    "entities",
    "slots",
    "responses",
    "actions",
    "forms",
    "e2e_actions",
    "session_config",
    "config",
)

IS_RETRIEVAL_INTENT = "is_retrieval_intent"

# Where an entry was written: (file, line). Keys are tuples such as ("slots", name),
# ("slots", name, mapping_index), ("responses", name, variation_index), ("forms", name).
Location = tuple[str | None, int | None]


@dataclass
class Slot:
    """One slot as declared in the domain.

    `values` are kept as written; comparisons against categorical values should be
    case-insensitive, as Rasa lower-cases them when it featurizes.
    """

    name: str
    type: str
    mappings: list[dict] = field(default_factory=list)
    influence_conversation: bool = True
    initial_value: Any = None
    values: list = field(default_factory=list)
    min_value: float = 0.0
    max_value: float = 1.0

    def as_dict(self) -> dict[str, Any]:
        """All fields as plain data, so a slot survives a JSON round trip unchanged."""
        return {
            "name": self.name,
            "type": self.type,
            "mappings": copy.deepcopy(self.mappings),
            "influence_conversation": self.influence_conversation,
            "initial_value": copy.deepcopy(self.initial_value),
            "values": list(self.values),
            "min_value": self.min_value,
            "max_value": self.max_value,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Slot:
        """Inverse of `as_dict`; missing fields take the dataclass defaults."""
        slot_type = data["type"]
        return cls(
            name=data["name"],
            type=slot_type,
            mappings=copy.deepcopy(data.get("mappings", [])),
            influence_conversation=data.get("influence_conversation", slot_type != "any"),
            initial_value=copy.deepcopy(data.get("initial_value")),
            values=list(data.get("values", [])),
            min_value=float(data.get("min_value", 0.0)),
            max_value=float(data.get("max_value", 1.0)),
        )


REQUESTED_SLOT = "requested_slot"
SESSION_STARTED_METADATA_SLOT = "session_started_metadata"


@dataclass
class Domain:
    """Everything the user declared in their domain file(s), in the order written."""

    intents: list[str] = field(default_factory=list)
    intent_properties: dict[str, dict] = field(default_factory=dict)
    entities: list[str] = field(default_factory=list)
    entity_roles: dict[str, list[str]] = field(default_factory=dict)
    entity_groups: dict[str, list[str]] = field(default_factory=dict)
    entity_influence_conversation: dict[str, bool] = field(default_factory=dict)
    slots: list[Slot] = field(default_factory=list)
    responses: dict[str, list[dict]] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    action_properties: dict[str, dict] = field(default_factory=dict)
    action_texts: list[str] = field(default_factory=list)
    forms: dict[str, dict] = field(default_factory=dict)
    session_config: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SESSION_CONFIG))
    store_entities_as_slots: bool = True
    locations: dict[tuple, Location] = field(default_factory=dict, compare=False, repr=False)

    # ----------------------------------------------------------------- derived views

    @property
    def all_intents(self) -> list[str]:
        """User intents followed by the defaults Rasa adds (restart, back, ...)."""
        return ordered_unique([*self.intents, *DEFAULT_INTENTS])

    @property
    def slot_names(self) -> list[str]:
        return [slot.name for slot in self.slots]

    @property
    def all_slot_names(self) -> list[str]:
        """Declared slots plus the ones Rasa adds itself (`requested_slot` with forms)."""
        builtin = [REQUESTED_SLOT] if self.forms else []
        return ordered_unique([*self.slot_names, *builtin, SESSION_STARTED_METADATA_SLOT])

    @property
    def form_names(self) -> list[str]:
        return list(self.forms)

    @property
    def user_actions(self) -> list[str]:
        """Custom actions, responses not listed under `actions:` (sorted, like Rasa), then the
        `utter_<intent>` action of each retrieval intent, which Rasa adds itself."""
        listed = set(self.actions)
        responses = [name for name in sorted(self.responses) if name not in listed]
        return ordered_unique([*self.actions, *responses, *self.retrieval_actions])

    @property
    def retrieval_actions(self) -> list[str]:
        """`utter_faq` for the retrieval intent `faq`: the action that answers it with the
        response the response selector picks."""
        return [f"utter_{intent}" for intent in self.retrieval_intents]

    @property
    def action_names_or_texts(self) -> list[str]:
        """Every action a policy can predict, indexed the way Rasa indexes them.

        Order matters because policies learn action indices: default actions, then
        custom actions, responses, forms, and finally end-to-end bot texts.
        """
        forms = [name for name in self.forms if name not in set(self.actions)]
        return ordered_unique([*DEFAULT_ACTIONS, *self.user_actions, *forms, *self.action_texts])

    @property
    def retrieval_intents(self) -> list[str]:
        """Intents marked `is_retrieval_intent` or that have `utter_<intent>/<key>` responses,
        sorted."""
        found = {name for name, props in self.intent_properties.items() if props.get(IS_RETRIEVAL_INTENT)}
        for name in self.responses:
            if RETRIEVAL_DELIMITER in name and name.startswith("utter_"):
                found.add(name[len("utter_") :].split(RETRIEVAL_DELIMITER, 1)[0])
        return sorted(found)

    def slot(self, name: str) -> Slot | None:
        """The slot called `name`, or None when the domain has no such slot."""
        for slot in self.slots:
            if slot.name == name:
                return slot
        return None

    def used_entities(self, intent: str) -> list[str]:
        """Entities that may influence the dialogue after `intent`, in domain order.

        `use_entities` picks from the domain's entities (True means all of them) and
        `ignore_entities` then removes some; ignoring wins when both name an entity.
        """
        properties = self.intent_properties.get(intent, {})
        use = properties.get("use_entities", True)
        ignore = set(properties.get("ignore_entities", []))
        chosen = self.entities if use is True else list(use)
        return [entity for entity in ordered_unique(chosen) if entity not in ignore]

    def location(self, *key: Any) -> Location:
        """(file, line) where an entry was written, falling back to its parent entry."""
        parts = tuple(key)
        while parts:
            if parts in self.locations:
                return self.locations[parts]
            parts = parts[:-1]
        return (None, None)

    def is_empty(self) -> bool:
        """True when nothing at all was written (defaults alone do not count)."""
        return not (
            self.intents
            or self.intent_properties
            or self.entities
            or self.entity_roles
            or self.entity_groups
            or self.entity_influence_conversation
            or self.slots
            or self.responses
            or self.actions
            or self.action_properties
            or self.action_texts
            or self.forms
            or self.session_config != DEFAULT_SESSION_CONFIG
            or not self.store_entities_as_slots
        )

    # ----------------------------------------------------------------------- merging

    def merge(self, other: Domain) -> Domain:
        """Combine two domains into a new one; `self` wins wherever they disagree.

        Lists are united in first-seen order. A slot, response, form or intent/action
        property block defined in both keeps the definition from `self` as a whole,
        so the result never depends on which keys happen to overlap. `session_config` values
        and `store_entities_as_slots` come from `self` unless `self` left them at
        Rasa's defaults.
        """
        slots = list(self.slots)
        known = set(self.slot_names)
        slots.extend(slot for slot in other.slots if slot.name not in known)

        session = dict(self.session_config)
        for key, value in other.session_config.items():
            if session.get(key, DEFAULT_SESSION_CONFIG.get(key)) == DEFAULT_SESSION_CONFIG.get(key):
                session[key] = value

        locations = dict(other.locations)
        locations.update(self.locations)

        return copy.deepcopy(
            Domain(
                intents=ordered_unique([*self.intents, *other.intents]),
                intent_properties=_first_wins(self.intent_properties, other.intent_properties),
                entities=ordered_unique([*self.entities, *other.entities]),
                entity_roles=_union_values(self.entity_roles, other.entity_roles),
                entity_groups=_union_values(self.entity_groups, other.entity_groups),
                entity_influence_conversation=_first_wins(
                    self.entity_influence_conversation, other.entity_influence_conversation
                ),
                slots=slots,
                responses=_first_wins(self.responses, other.responses),
                actions=ordered_unique([*self.actions, *other.actions]),
                action_properties=_first_wins(self.action_properties, other.action_properties),
                action_texts=ordered_unique([*self.action_texts, *other.action_texts]),
                forms=_first_wins(self.forms, other.forms),
                session_config=session,
                store_entities_as_slots=self.store_entities_as_slots
                and other.store_entities_as_slots,
                locations=locations,
            )
        )

    # ------------------------------------------------------------------ serialising

    def as_dict(self) -> dict[str, Any]:
        """Canonical plain-data form, stable enough to fingerprint.

        Mappings whose order carries no meaning are sorted; lists whose order is
        meaningful (intents, slots, forms, actions, variations) keep it, and forms are
        a list for that reason.
        """
        return {
            "intents": list(self.intents),
            "intent_properties": _sorted_dict(self.intent_properties),
            "entities": list(self.entities),
            "entity_roles": _sorted_dict(self.entity_roles),
            "entity_groups": _sorted_dict(self.entity_groups),
            "entity_influence_conversation": _sorted_dict(self.entity_influence_conversation),
            "slots": [slot.as_dict() for slot in self.slots],
            "responses": _sorted_dict(self.responses),
            "actions": list(self.actions),
            "action_properties": _sorted_dict(self.action_properties),
            "e2e_actions": list(self.action_texts),
            "forms": [{"name": name, **copy.deepcopy(spec)} for name, spec in self.forms.items()],
            "session_config": _sorted_dict(self.session_config),
            "config": {"store_entities_as_slots": self.store_entities_as_slots},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Domain:
        """Inverse of `as_dict` (source locations are not part of the plain form)."""
        data = copy.deepcopy(data)
        forms: dict[str, dict] = {}
        for spec in data.get("forms", []):
            name = spec.pop("name")
            forms[name] = spec
        session = dict(DEFAULT_SESSION_CONFIG)
        session.update(data.get("session_config", {}))
        return cls(
            intents=list(data.get("intents", [])),
            intent_properties=dict(data.get("intent_properties", {})),
            entities=list(data.get("entities", [])),
            entity_roles=dict(data.get("entity_roles", {})),
            entity_groups=dict(data.get("entity_groups", {})),
            entity_influence_conversation=dict(data.get("entity_influence_conversation", {})),
            slots=[Slot.from_dict(slot) for slot in data.get("slots", [])],
            responses=dict(data.get("responses", {})),
            actions=list(data.get("actions", [])),
            action_properties=dict(data.get("action_properties", {})),
            action_texts=list(data.get("e2e_actions", [])),
            forms=forms,
            session_config=session,
            store_entities_as_slots=bool(
                data.get("config", {}).get("store_entities_as_slots", True)
            ),
        )


# ------------------------------------------------------------------------ utilities


def ordered_unique(items: Iterable[Any]) -> list[Any]:
    """The items without repeats, in first-seen order."""
    return list(dict.fromkeys(items))


def _first_wins(first: dict, second: dict) -> dict:
    merged = dict(first)
    for key, value in second.items():
        merged.setdefault(key, value)
    return merged


def _union_values(first: dict[str, list], second: dict[str, list]) -> dict[str, list]:
    merged = {key: list(values) for key, values in first.items()}
    for key, values in second.items():
        merged[key] = ordered_unique([*merged.get(key, []), *values])
    return merged


def _sorted_dict(data: dict) -> dict:
    return {key: copy.deepcopy(data[key]) for key in sorted(data)}
