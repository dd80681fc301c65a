"""The domain of an assistant (Rasa 3.x `domain.yml`).

The domain keeps what the user wrote and nothing more: defaults that Rasa adds when it
loads a domain (default intents, default actions) are exposed through properties instead
of being mixed into the written lists, so counts and error messages refer to the user's
own files. Every entry remembers the file and line it came from, so the consistency
checks at the bottom can point at the line to fix.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainkit.data.yaml_io import (
    YAML_SUFFIXES,
    check_version,
    expect_list,
    expect_mapping,
    line_of,
    load_yaml,
    to_plain,
    type_name,
)
from trainkit.errors import DataError, Problem, raise_problems

SLOT_TYPES = ("text", "bool", "categorical", "float", "list", "any")

# Rasa's slot classes by the name `rasa data migrate` writes (`rasa.shared.core.slots.X`).
BUILTIN_SLOT_CLASSES = {
    "TextSlot": "text",
    "BooleanSlot": "bool",
    "CategoricalSlot": "categorical",
    "FloatSlot": "float",
    "ListSlot": "list",
    "AnySlot": "any",
}

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

# Keys that make a YAML file a domain file when a whole directory is loaded; files
# without any of them (config.yml, credentials.yml) are skipped there, as Rasa does.
_CONTENT_KEYS = frozenset(DOMAIN_KEYS) - {"version", "config"}

# Keys of training-data files. NLU files may also carry `responses:` for retrieval
# intents; those belong to the training data, so such files are not domain files.
_TRAINING_DATA_KEYS = frozenset({"nlu", "stories", "rules"})

_INTENT_PROPERTIES = ("use_entities", "ignore_entities", "is_retrieval_intent")
IS_RETRIEVAL_INTENT = "is_retrieval_intent"
_ENTITY_PROPERTIES = ("roles", "groups", "influence_conversation")
_ACTION_PROPERTIES = ("send_domain",)
_SLOT_KEYS = (
    "type",
    "mappings",
    "influence_conversation",
    "initial_value",
    "values",
    "min_value",
    "max_value",
    "value_reset_delay",
)
_SESSION_KEYS = tuple(DEFAULT_SESSION_CONFIG)
_CONFIG_KEYS = ("store_entities_as_slots",)

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
        return _unique([*self.intents, *DEFAULT_INTENTS])

    @property
    def slot_names(self) -> list[str]:
        return [slot.name for slot in self.slots]

    @property
    def all_slot_names(self) -> list[str]:
        """Declared slots plus the ones Rasa adds itself (`requested_slot` with forms)."""
        builtin = [REQUESTED_SLOT] if self.forms else []
        return _unique([*self.slot_names, *builtin, SESSION_STARTED_METADATA_SLOT])

    @property
    def form_names(self) -> list[str]:
        return list(self.forms)

    @property
    def user_actions(self) -> list[str]:
        """Custom actions, responses not listed under `actions:` (sorted, like Rasa), then the
        `utter_<intent>` action of each retrieval intent, which Rasa adds itself."""
        listed = set(self.actions)
        responses = [name for name in sorted(self.responses) if name not in listed]
        return _unique([*self.actions, *responses, *self.retrieval_actions])

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
        return _unique([*DEFAULT_ACTIONS, *self.user_actions, *forms, *self.action_texts])

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
        return [entity for entity in _unique(chosen) if entity not in ignore]

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
                intents=_unique([*self.intents, *other.intents]),
                intent_properties=_first_wins(self.intent_properties, other.intent_properties),
                entities=_unique([*self.entities, *other.entities]),
                entity_roles=_union_values(self.entity_roles, other.entity_roles),
                entity_groups=_union_values(self.entity_groups, other.entity_groups),
                entity_influence_conversation=_first_wins(
                    self.entity_influence_conversation, other.entity_influence_conversation
                ),
                slots=slots,
                responses=_first_wins(self.responses, other.responses),
                actions=_unique([*self.actions, *other.actions]),
                action_properties=_first_wins(self.action_properties, other.action_properties),
                action_texts=_unique([*self.action_texts, *other.action_texts]),
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


# ------------------------------------------------------------------------- loading


def load_domain(path: str | Path) -> Domain:
    """Load a domain file, or every domain file under a directory merged together.

    Directory files are read in sorted path order and merged with the earlier file
    winning, so the result is the same on every machine. YAML files in the directory
    that hold none of the domain sections, or that are training data (nlu, stories,
    rules), are skipped, so a whole project folder can be passed.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("domain path does not exist", path)
    if path.is_file():
        return parse_domain(load_yaml(path), path)
    files = sorted(
        (p for p in path.rglob("*") if p.is_file() and p.name.endswith(YAML_SUFFIXES)),
        key=lambda p: p.relative_to(path).as_posix(),
    )
    domain = Domain()
    for file in files:
        document = load_yaml(file)
        if not _is_domain_document(document):
            continue
        domain = domain.merge(parse_domain(document, file))
    return domain


def parse_domain(document: Any, path: str | Path) -> Domain:
    """Build a Domain from one parsed YAML document; `path` is used in error messages."""
    return _DomainParser(path).parse(document)


def _is_domain_document(document: Any) -> bool:
    if not isinstance(document, dict):
        return False
    if any(key in _TRAINING_DATA_KEYS for key in document):
        return False
    return any(key in _CONTENT_KEYS for key in document)


class _DomainParser:
    """Turns one domain document into a Domain; every faulty section, slot and response is
    reported (one DataError, or DataErrors for several)."""

    def __init__(self, path: str | Path) -> None:
        self.path = path
        self.file = str(path)
        self.domain = Domain()
        self.problems: list[Problem] = []

    def error(self, message: str, line: int | None) -> DataError:
        return DataError(message, self.path, line)

    def remember(self, key: tuple, line: int | None) -> None:
        self.domain.locations.setdefault(key, (self.file, line))

    def parse(self, document: Any) -> Domain:
        if document is None:
            return self.domain
        expect_mapping(document, self.path, "a domain file", line_of(document) or 1)
        check_version(document, self.path)
        for key in document:
            if key not in DOMAIN_KEYS:
                self.problems.append(
                    self.error(
                        f"unknown top-level key {key!r} in the domain (known: {', '.join(DOMAIN_KEYS)})",
                        line_of(document, key),
                    ).problem
                )
        sections = {
            "intents": self.intents,
            "entities": self.entities,
            "slots": self.slots,
            "responses": self.responses,
            "actions": self.actions,
            "forms": self.forms,
            "e2e_actions": self.e2e_actions,
            "session_config": self.session_config,
            "config": self.config,
        }
        for key, parse_section in sections.items():
            if key in document and document[key] is not None:
                with self.collecting():
                    parse_section(document[key], line_of(document, key))
        raise_problems(self.problems)
        return self.domain

    @contextlib.contextmanager
    def collecting(self) -> Iterator[None]:
        """Record a fault and carry on with the next entry, so one run reports them all."""
        try:
            yield
        except DataError as exc:
            self.problems.append(exc.problem)

    # ------------------------------------------------------------- building blocks

    def name(self, value: Any, what: str, line: int | None) -> str:
        """Names must be non-empty strings; YAML turns `- 1` or `- null` into other types."""
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"{what} must be a non-empty string, got {type_name(value)}", line)
        return str(value)

    def names(self, node: Any, what: str, line: int | None, single_ok: bool = False) -> list[str]:
        """A list of names; `single_ok` also takes one bare name where Rasa does."""
        if node is None:
            return []
        if single_ok and isinstance(node, str):
            return [str(node)]
        items = expect_list(node, self.path, what, line)
        return [
            self.name(item, f"each entry of {what}", line_of(items, index=i) or line)
            for i, item in enumerate(items)
        ]

    def named_entry(self, item: Any, what: str, line: int | None) -> tuple[str, Any]:
        """`- name` or `- name: {properties}`; returns the name and raw properties."""
        if isinstance(item, dict):
            if len(item) != 1:
                keys = ", ".join(repr(str(k)) for k in item)
                raise self.error(
                    f"{what} written as a mapping must have exactly one key (its name), "
                    f"got {keys}; check the indentation of its properties",
                    line,
                )
            key, properties = next(iter(item.items()))
            return self.name(key, f"{what} name", line), properties
        return self.name(item, what, line), None

    def check_keys(self, node: dict, known: Iterable[str], what: str) -> None:
        known = tuple(known)
        for key in node:
            if key not in known:
                raise self.error(
                    f"unknown key {key!r} in {what} (known: {', '.join(known)})",
                    line_of(node, key),
                )

    def boolean(self, node: dict, key: str, what: str) -> bool:
        value = node[key]
        if not isinstance(value, bool):
            raise self.error(
                f"{key} of {what} must be true or false, got {type_name(value)}",
                line_of(node, key),
            )
        return value

    def number(self, node: dict, key: str, what: str) -> float:
        value = node[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(
                f"{key} of {what} must be a number, got {type_name(value)}", line_of(node, key)
            )
        return value

    # -------------------------------------------------------------------- sections

    def intents(self, node: Any, line: int | None) -> None:
        items = expect_list(node, self.path, "intents", line)
        for index, item in enumerate(items):
            item_line = line_of(items, index=index) or line
            name, properties = self.named_entry(item, "an intent", item_line)
            if name in self.domain.intents:
                raise self.error(f"intent {name!r} is listed more than once", item_line)
            self.domain.intents.append(name)
            self.remember(("intents", name), item_line)
            if isinstance(item, dict):
                self.domain.intent_properties[name] = self.intent_properties(
                    name, properties, item_line
                )

    def intent_properties(self, name: str, properties: Any, line: int | None) -> dict:
        what = f"intent {name!r}"
        if properties is None or properties == {}:
            raise self.error(
                f"{what} is followed by ':' but has no properties; remove the ':' or add "
                "use_entities / ignore_entities / is_retrieval_intent",
                line,
            )
        expect_mapping(properties, self.path, f"the properties of {what}", line)
        self.check_keys(properties, _INTENT_PROPERTIES, f"the properties of {what}")
        result: dict[str, Any] = {}
        if "use_entities" in properties:
            use = properties["use_entities"]
            key_line = line_of(properties, "use_entities")
            if use is True:
                result["use_entities"] = True
            elif use is False or use is None:
                result["use_entities"] = []
            else:
                result["use_entities"] = self.names(use, f"use_entities of {what}", key_line)
        if "ignore_entities" in properties:
            key_line = line_of(properties, "ignore_entities")
            result["ignore_entities"] = self.names(
                properties["ignore_entities"], f"ignore_entities of {what}", key_line
            )
        if IS_RETRIEVAL_INTENT in properties and self.boolean(properties, IS_RETRIEVAL_INTENT, what):
            result[IS_RETRIEVAL_INTENT] = True
        return result

    def entities(self, node: Any, line: int | None) -> None:
        items = expect_list(node, self.path, "entities", line)
        for index, item in enumerate(items):
            item_line = line_of(items, index=index) or line
            name, properties = self.named_entry(item, "an entity", item_line)
            if name not in self.domain.entities:
                self.domain.entities.append(name)
            self.remember(("entities", name), item_line)
            if not isinstance(item, dict):
                continue
            what = f"entity {name!r}"
            if properties is None or properties == {}:
                raise self.error(
                    f"{what} is followed by ':' but has no properties; remove the ':' or "
                    "add roles / groups",
                    item_line,
                )
            expect_mapping(properties, self.path, f"the properties of {what}", item_line)
            self.check_keys(properties, _ENTITY_PROPERTIES, f"the properties of {what}")
            for key, target in (
                ("roles", self.domain.entity_roles),
                ("groups", self.domain.entity_groups),
            ):
                if key in properties:
                    values = self.names(
                        properties[key], f"{key} of {what}", line_of(properties, key)
                    )
                    target[name] = _unique([*target.get(name, []), *values])
            if "influence_conversation" in properties:
                self.domain.entity_influence_conversation[name] = self.boolean(
                    properties, "influence_conversation", what
                )

    def slots(self, node: Any, line: int | None) -> None:
        slots = expect_mapping(node, self.path, "slots", line)
        for key in slots:
            key_line = line_of(slots, key) or line
            with self.collecting():
                name = self.name(key, "a slot name", key_line)
                self.domain.slots.append(self.slot(name, slots[key], key_line))
                self.remember(("slots", name), key_line)

    def slot(self, name: str, spec: Any, line: int | None) -> Slot:
        what = f"slot {name!r}"
        if spec is None:
            raise self.error(f"{what} needs at least a type", line)
        expect_mapping(spec, self.path, what, line)
        if "auto_fill" in spec:
            raise self.error(
                f"{what} uses auto_fill, which Rasa 3 replaced by slot mappings",
                line_of(spec, "auto_fill"),
            )
        self.check_keys(spec, _SLOT_KEYS, what)
        if "type" not in spec:
            raise self.error(f"{what} has no type (one of: {', '.join(SLOT_TYPES)})", line)
        slot_type = spec["type"]
        type_line = line_of(spec, "type")
        custom_class = False
        if isinstance(slot_type, str) and "." in slot_type:
            slot_type, custom_class = self.dotted_slot_type(slot_type, what, type_line)
        if slot_type not in SLOT_TYPES:
            hint = ""
            if slot_type == "unfeaturized":
                hint = "; use type any or influence_conversation: false instead"
            raise self.error(
                f"unknown type {slot_type!r} for {what} (known: {', '.join(SLOT_TYPES)}){hint}",
                type_line,
            )
        slot = Slot(name=name, type=slot_type, influence_conversation=slot_type != "any")

        if "influence_conversation" in spec:
            influence = self.boolean(spec, "influence_conversation", what) and not custom_class
            if slot_type == "any" and influence:
                raise self.error(
                    f"{what} is of type any, which cannot influence the conversation; "
                    "set influence_conversation: false or use another type",
                    line_of(spec, "influence_conversation"),
                )
            slot.influence_conversation = influence

        mappings = spec.get("mappings")
        if mappings is not None:
            mappings_line = line_of(spec, "mappings")
            expect_list(mappings, self.path, f"mappings of {what}", mappings_line)
            for index, mapping in enumerate(mappings):
                mapping_line = line_of(mappings, index=index) or mappings_line
                expect_mapping(mapping, self.path, f"each mapping of {what}", mapping_line)
                slot.mappings.append(to_plain(mapping))
                self.remember(("slots", name, index), mapping_line)

        if "initial_value" in spec:
            slot.initial_value = to_plain(spec["initial_value"])

        if "values" in spec and slot_type != "categorical":
            raise self.error(
                f"values are only allowed for categorical slots, but {what} is {slot_type}",
                line_of(spec, "values"),
            )
        if slot_type == "categorical":
            if "values" not in spec:
                raise self.error(f"categorical {what} needs a list of values", line)
            values = expect_list(
                spec["values"], self.path, f"values of {what}", line_of(spec, "values")
            )
            for index, value in enumerate(values):
                if isinstance(value, (dict, list)):
                    raise self.error(
                        f"each value of {what} must be a single value, got {type_name(value)}",
                        line_of(values, index=index),
                    )
            slot.values = to_plain(values)

        for key in ("min_value", "max_value"):
            if key in spec and slot_type != "float":
                raise self.error(
                    f"{key} is only allowed for float slots, but {what} is {slot_type}",
                    line_of(spec, key),
                )
        if slot_type == "float":
            if "min_value" in spec:
                slot.min_value = float(self.number(spec, "min_value", what))
            if "max_value" in spec:
                slot.max_value = float(self.number(spec, "max_value", what))
            if slot.max_value < slot.min_value:
                raise self.error(
                    f"max_value of {what} ({slot.max_value}) is below its min_value "
                    f"({slot.min_value})",
                    line_of(spec, "max_value") or line,
                )
        return slot

    def dotted_slot_type(self, dotted: str, what: str, line: int | None) -> tuple[str, bool]:
        """A Rasa slot class path: built-in classes are their type, others a custom class.

        trainkit cannot run a custom slot class's featurization, so such a slot is kept
        as `any` (it does not influence the conversation) and the user is told once.
        """
        module, _, name = dotted.rpartition(".")
        if module.startswith("rasa.") and name in BUILTIN_SLOT_CLASSES:
            return BUILTIN_SLOT_CLASSES[name], False
        warnings.warn(
            f"{self.file}:{line}: {what} has the custom slot class '{dotted}', which trainkit "
            "cannot run; the slot is kept as type 'any' and does not influence the conversation",
            stacklevel=2,
        )
        return "any", True

    def responses(self, node: Any, line: int | None) -> None:
        responses = expect_mapping(node, self.path, "responses", line)
        for key in responses:
            key_line = line_of(responses, key) or line
            with self.collecting():
                self.response(responses, key, key_line)

    def response(self, responses: dict, key: Any, key_line: int | None) -> None:
        """One response and its variations."""
        name = self.name(key, "a response name", key_line)
        what = f"response {name!r}"
        variations = responses[key]
        if variations is None:
            raise self.error(f"{what} must be a list of variations, got null", key_line)
        expect_list(variations, self.path, f"{what} (its variations)", key_line)
        self.remember(("responses", name), key_line)
        for index, variation in enumerate(variations):
            variation_line = line_of(variations, index=index) or key_line
            expect_mapping(variation, self.path, f"each variation of {what}", variation_line)
            self.remember(("responses", name, index), variation_line)
        self.domain.responses[name] = to_plain(variations)

    def actions(self, node: Any, line: int | None) -> None:
        items = expect_list(node, self.path, "actions", line)
        for index, item in enumerate(items):
            item_line = line_of(items, index=index) or line
            name, properties = self.named_entry(item, "an action", item_line)
            if name not in self.domain.actions:
                self.domain.actions.append(name)
            self.remember(("actions", name), item_line)
            if properties is None:
                continue
            what = f"action {name!r}"
            expect_mapping(properties, self.path, f"the properties of {what}", item_line)
            self.check_keys(properties, _ACTION_PROPERTIES, f"the properties of {what}")
            result = {key: self.boolean(properties, key, what) for key in properties}
            self.domain.action_properties.setdefault(name, result)

    def forms(self, node: Any, line: int | None) -> None:
        if isinstance(node, list):
            raise self.error(
                "forms must be a mapping of form name to its required_slots; the list "
                "of form names is the Rasa 1 format",
                line,
            )
        forms = expect_mapping(node, self.path, "forms", line)
        for key in forms:
            key_line = line_of(forms, key) or line
            name = self.name(key, "a form name", key_line)
            self.domain.forms[name] = self.form(name, forms[key], key_line)
            self.remember(("forms", name), key_line)

    def form(self, name: str, spec: Any, line: int | None) -> dict:
        what = f"form {name!r}"
        if spec is None:
            return {"required_slots": []}
        expect_mapping(spec, self.path, what, line)
        if "required_slots" not in spec and any(key not in ("ignored_intents",) for key in spec):
            # Rasa 2.0 wrote the slot mappings straight under the form name.
            return {"required_slots": [str(key) for key in spec]}
        result: dict[str, Any] = {}
        required = spec.get("required_slots")
        required_line = line_of(spec, "required_slots") or line
        if isinstance(required, dict):
            # Rasa 2.x: required_slots maps each slot to its mappings.
            result["required_slots"] = [
                self.name(slot, f"a required slot of {what}", line_of(required, slot))
                for slot in required
            ]
        else:
            result["required_slots"] = self.names(
                required, f"required_slots of {what}", required_line
            )
        for key in spec:
            if key == "required_slots":
                continue
            if key == "ignored_intents":
                result[key] = self.names(
                    spec[key], f"ignored_intents of {what}", line_of(spec, key), single_ok=True
                )
            else:
                result[str(key)] = to_plain(spec[key])
        return result

    def e2e_actions(self, node: Any, line: int | None) -> None:
        for text in self.names(node, "e2e_actions", line):
            if text not in self.domain.action_texts:
                self.domain.action_texts.append(text)

    def session_config(self, node: Any, line: int | None) -> None:
        config = expect_mapping(node, self.path, "session_config", line)
        self.check_keys(config, _SESSION_KEYS, "session_config")
        if "session_expiration_time" in config:
            minutes = self.number(config, "session_expiration_time", "session_config")
            if minutes < 0:
                raise self.error(
                    "session_expiration_time must not be negative",
                    line_of(config, "session_expiration_time"),
                )
            self.domain.session_config["session_expiration_time"] = minutes
        if "carry_over_slots_to_new_session" in config:
            self.domain.session_config["carry_over_slots_to_new_session"] = self.boolean(
                config, "carry_over_slots_to_new_session", "session_config"
            )

    def config(self, node: Any, line: int | None) -> None:
        config = expect_mapping(node, self.path, "config", line)
        self.check_keys(config, _CONFIG_KEYS, "config")
        if "store_entities_as_slots" in config:
            self.domain.store_entities_as_slots = self.boolean(
                config, "store_entities_as_slots", "config"
            )


# ---------------------------------------------------------------- consistency checks


def check_forms(domain: Domain) -> list[Problem]:
    """A form can only fill slots the domain declares (a warning, as in Rasa)."""
    problems = []
    slots = set(domain.slot_names)
    for form, spec in domain.forms.items():
        path, line = domain.location("forms", form)
        for slot in spec.get("required_slots", []):
            if slot not in slots:
                problems.append(
                    Problem(
                        f"form {form!r} requires slot {slot!r}, which is not in the domain's slots",
                        path,
                        line,
                        "warning",
                    )
                )
    return problems


def check_slot_mappings(domain: Domain) -> list[Problem]:
    """Mappings that could never fill their slot, or that name things that do not exist."""
    problems = []
    forms = set(domain.forms)
    slots = set(domain.slot_names)
    entities = set(domain.entities)
    for slot in domain.slots:
        for index, mapping in enumerate(slot.mappings):
            path, line = domain.location("slots", slot.name, index)
            what = f"mapping {index + 1} of slot {slot.name!r}"
            findings = _mapping_findings(mapping, what, entities)
            if isinstance(mapping, dict) and mapping.get("type") in MAPPING_TYPES:
                findings.extend(_condition_findings(domain, mapping, what, forms, slots))
            problems.extend(Problem(message, path, line, level) for message, level in findings)
    return problems


def _mapping_findings(mapping: Any, what: str, entities: set[str]) -> list[tuple[str, str]]:
    """(message, level) pairs for one slot mapping on its own."""
    if not isinstance(mapping, dict):
        return [(f"{what} must be a mapping, got {type_name(mapping)}", "error")]
    mapping_type = mapping.get("type")
    if mapping_type is None:
        return [(f"{what} has no type (one of: {', '.join(MAPPING_TYPES)})", "error")]
    if mapping_type not in MAPPING_TYPES:
        return [
            (
                f"{what} has unknown type {mapping_type!r} (known: {', '.join(MAPPING_TYPES)})",
                "error",
            )
        ]
    findings = [
        (f"{what} is {mapping_type} but has no {key!r}", "error")
        for key in MAPPING_REQUIRED_KEYS[mapping_type]
        if key not in mapping
    ]
    findings.extend(
        (f"{what} has unknown key {key!r}", "warning") for key in mapping if key not in MAPPING_KEYS
    )
    entity = mapping.get("entity")
    if mapping_type == "from_entity" and isinstance(entity, str) and entity not in entities:
        findings.append(
            (f"{what} reads entity {entity!r}, which is not in the domain's entities", "error")
        )
    return findings


def _condition_findings(
    domain: Domain, mapping: dict, what: str, forms: set[str], slots: set[str]
) -> list[tuple[str, str]]:
    """(message, level) pairs for the `conditions` of one slot mapping."""
    conditions = mapping.get("conditions")
    if conditions is None:
        return []
    if not isinstance(conditions, list):
        return [(f"conditions of {what} must be a list", "error")]
    findings = []
    for condition in conditions:
        if not isinstance(condition, dict):
            findings.append((f"each condition of {what} must be a mapping", "error"))
            continue
        loop = condition.get("active_loop")
        requested = condition.get("requested_slot")
        if loop is not None and loop not in forms:
            findings.append((f"{what} has a condition on unknown form {loop!r}", "error"))
        if requested is not None and requested not in slots:
            findings.append((f"{what} has a condition on unknown slot {requested!r}", "error"))
        elif loop in forms and requested is not None:
            if requested not in domain.forms[loop].get("required_slots", []):
                findings.append(
                    (
                        f"{what} is conditioned on form {loop!r} requesting {requested!r}, "
                        "which is not one of that form's required_slots",
                        "warning",
                    )
                )
    return findings


def check_responses(domain: Domain) -> list[Problem]:
    """Responses that would send nothing, or that condition on slots that do not exist."""
    problems = []
    slots = set(domain.slot_names)
    for name, variations in domain.responses.items():
        if not variations:
            path, line = domain.location("responses", name)
            problems.append(Problem(f"response {name!r} has no variations", path, line))
        for index, variation in enumerate(variations):
            path, line = domain.location("responses", name, index)
            what = f"variation {index + 1} of response {name!r}"
            if not isinstance(variation, dict):
                problems.append(Problem(f"{what} must be a mapping", path, line))
                continue
            if not any(variation.get(key) not in (None, "", []) for key in RESPONSE_CONTENT_KEYS):
                problems.append(
                    Problem(
                        f"{what} has no content (one of: {', '.join(RESPONSE_CONTENT_KEYS)})",
                        path,
                        line,
                    )
                )
            buttons = variation.get("buttons")
            if buttons is not None and (
                not isinstance(buttons, list) or not all(isinstance(b, dict) for b in buttons)
            ):
                problems.append(
                    Problem(f"buttons of {what} must be a list of mappings", path, line)
                )
            problems.extend(_check_response_condition(variation, what, path, line, slots))
    return problems


def _check_response_condition(
    variation: dict, what: str, path: str | None, line: int | None, slots: set[str]
) -> list[Problem]:
    condition = variation.get("condition")
    if condition is None:
        return []
    if not isinstance(condition, list):
        return [Problem(f"condition of {what} must be a list", path, line)]
    problems = []
    for item in condition:
        if not isinstance(item, dict) or item.get("type") != "slot" or "name" not in item:
            problems.append(
                Problem(
                    f"each condition of {what} must be a mapping with type: slot, name and value",
                    path,
                    line,
                )
            )
            continue
        if item["name"] not in slots:
            problems.append(
                Problem(f"{what} has a condition on unknown slot {item['name']!r}", path, line)
            )
    return problems


# ------------------------------------------------------------------------ utilities


def _unique(items: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(items))


def _first_wins(first: dict, second: dict) -> dict:
    merged = dict(first)
    for key, value in second.items():
        merged.setdefault(key, value)
    return merged


def _union_values(first: dict[str, list], second: dict[str, list]) -> dict[str, list]:
    merged = {key: list(values) for key, values in first.items()}
    for key, values in second.items():
        merged[key] = _unique([*merged.get(key, []), *values])
    return merged


def _sorted_dict(data: dict) -> dict:
    return {key: copy.deepcopy(data[key]) for key in sorted(data)}
