"""Filling slots from a user message through the domain's slot mappings (Rasa 3's
`action_extract_slots`).

Runs after every user message, before any policy decides: each slot takes the value of
its first mapping that applies. A mapping applies when its intent filter (`intent`,
`not_intent`, and the active form's `ignored_intents`) lets the message's intent through
and its `conditions` hold: one of them names the active loop and, if it says so, the
requested slot. `from_trigger_intent` mappings are the form's business when it starts
(see `forms`), and `custom` mappings are left to custom actions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainkit.core.tracker import DialogueStateTracker
from trainkit.data.domain import REQUESTED_SLOT, Domain, Slot


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def intent_is_wanted(mapping: Mapping[str, Any], intent: str | None, ignored: list[str]) -> bool:
    """Whether the mapping's `intent`/`not_intent` filter (and ignored intents) admit `intent`."""
    wanted = _as_list(mapping.get("intent"))
    unwanted = _as_list(mapping.get("not_intent")) + ignored
    if wanted:
        return intent in wanted and intent not in unwanted
    return intent not in unwanted


def conditions_hold(mapping: Mapping[str, Any], active_loop: str | None, requested_slot: Any) -> bool:
    """Rasa 3's mapping conditions: without any the mapping always applies; with some, one
    must name the active loop and (when it names one) the requested slot."""
    conditions = mapping.get("conditions") or []
    if not conditions:
        return True
    if active_loop is None:
        return False
    for condition in conditions:
        if not isinstance(condition, Mapping) or condition.get("active_loop") != active_loop:
            continue
        wanted = condition.get("requested_slot")
        if wanted is None or wanted == requested_slot:
            return True
    return False


def _ignored_intents(mapping: Mapping[str, Any], domain: Domain, active_loop: str | None) -> list[str]:
    """The active form's `ignored_intents`, for mappings that are not tied to another loop."""
    if active_loop is None or active_loop not in domain.forms:
        return []
    loops = [c.get("active_loop") for c in mapping.get("conditions") or [] if isinstance(c, Mapping)]
    if loops and active_loop not in loops:
        return []
    return _as_list(domain.forms[active_loop].get("ignored_intents"))


def _entity_values(mapping: Mapping[str, Any], parse_data: Mapping[str, Any]) -> list[Any]:
    return [
        entity.get("value")
        for entity in parse_data.get("entities") or []
        if entity.get("entity") == mapping.get("entity")
        and entity.get("role") == mapping.get("role")
        and entity.get("group") == mapping.get("group")
        and entity.get("value") is not None
    ]


def _shared_entity(slot: Slot, mapping: Mapping[str, Any], domain: Domain, active_loop: str | None) -> bool:
    """Whether the active form maps the same entity to another of its slots too, in which
    case only the requested slot takes it (as in Rasa)."""
    if active_loop is None or active_loop not in domain.forms:
        return False
    required = domain.forms[active_loop].get("required_slots") or []
    if slot.name not in required:
        return False
    key = (mapping.get("entity"), mapping.get("role"), mapping.get("group"))
    for other in required:
        other_slot = domain.slot(other)
        if other_slot is None or other == slot.name:
            continue
        for candidate in other_slot.mappings:
            if candidate.get("type") == "from_entity" and (
                candidate.get("entity"), candidate.get("role"), candidate.get("group")
            ) == key:
                return True
    return False


def mapping_value(
    slot: Slot, mapping: Mapping[str, Any], parse_data: Mapping[str, Any], tracker: DialogueStateTracker
) -> Any:
    """The value one mapping gives the slot for this message, or None."""
    domain = tracker.domain
    kind = mapping.get("type")
    loop = tracker.active_loop_name
    requested = tracker.get_slot(REQUESTED_SLOT)
    intent = (parse_data.get("intent") or {}).get("name")
    if kind in ("from_trigger_intent", "custom"):
        return None
    if not intent_is_wanted(mapping, intent, _ignored_intents(mapping, domain, loop)):
        return None
    if not conditions_hold(mapping, loop, requested):
        return None
    if kind == "from_entity":
        if not domain.store_entities_as_slots:
            return None
        if requested != slot.name and _shared_entity(slot, mapping, domain, loop):
            return None
        values = _entity_values(mapping, parse_data)
        if not values:
            return None
        return values if slot.type == "list" else values[-1]
    if kind == "from_text":
        return parse_data.get("text")
    if kind == "from_intent":
        return mapping.get("value")
    return None


def extract_slots(parse_data: Mapping[str, Any], tracker: DialogueStateTracker) -> dict[str, Any]:
    """The slots this message sets, in domain order: only values that change the slot."""
    found: dict[str, Any] = {}
    for slot in tracker.domain.slots:
        for mapping in slot.mappings:
            if not isinstance(mapping, Mapping):
                continue
            value = mapping_value(slot, mapping, parse_data, tracker)
            if value is not None:
                if tracker.get_slot(slot.name) != value:
                    found[slot.name] = value
                break
    return found
