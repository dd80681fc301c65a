"""Reading Rasa 3.x domain files into a `Domain`.

Every section, slot and response is checked as it is read, and every problem found is
reported with the file and line it is on, all at once, so one run shows everything to fix.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from trainkit.data.domain import (
    DEFAULT_SESSION_CONFIG,
    DOMAIN_KEYS,
    IS_RETRIEVAL_INTENT,
    SLOT_TYPES,
    Domain,
    Slot,
    ordered_unique,
)
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

# Keys that make a YAML file a domain file when a whole directory is loaded; files
# without any of them (config.yml, credentials.yml) are skipped there, as Rasa does.
_CONTENT_KEYS = frozenset(DOMAIN_KEYS) - {"version", "config"}

# Keys of training-data files. NLU files may also carry `responses:` for retrieval
# intents; those belong to the training data, so such files are not domain files.
_TRAINING_DATA_KEYS = frozenset({"nlu", "stories", "rules"})

_INTENT_PROPERTIES = ("use_entities", "ignore_entities", "is_retrieval_intent")
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

# Rasa's slot classes by the name `rasa data migrate` writes (`rasa.shared.core.slots.X`).
BUILTIN_SLOT_CLASSES = {
    "TextSlot": "text",
    "BooleanSlot": "bool",
    "CategoricalSlot": "categorical",
    "FloatSlot": "float",
    "ListSlot": "list",
    "AnySlot": "any",
}


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
                    target[name] = ordered_unique([*target.get(name, []), *values])
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
