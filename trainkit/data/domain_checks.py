"""Consistency checks of a loaded domain: forms, slot mappings and responses that name
things the domain does not have. Each finding points at the file and line of the entry."""

from __future__ import annotations

from typing import Any

from trainkit.data.domain import (
    MAPPING_KEYS,
    MAPPING_REQUIRED_KEYS,
    MAPPING_TYPES,
    RESPONSE_CONTENT_KEYS,
    Domain,
)
from trainkit.data.yaml_io import (
    type_name,
)
from trainkit.errors import Problem


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
