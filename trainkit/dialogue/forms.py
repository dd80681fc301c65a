"""One run of a form action on its validation-free happy path (Rasa 3's `FormAction`).

Starting, the form becomes the active loop and its `from_trigger_intent` mappings fill
slots from the message that started it. Running again right after user input, it checks
the input: if it asks for a slot and the message filled none of its slots, it rejects
the input (`action_execution_rejected`), so rules and other policies answer instead.
After an interruption it does not check, it asks again. Then it asks for the first
required slot that is still empty (`requested_slot` and the `utter_ask_<form>_<slot>`,
`utter_ask_<slot>`, `action_ask_<form>_<slot>` or `action_ask_<slot>` action), or, when
none is, clears `requested_slot` and ends the loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trainkit.core.rasa_events import rasa_event
from trainkit.core.tracker import DialogueStateTracker
from trainkit.data.domain import REQUESTED_SLOT, Domain
from trainkit.data.events import ACTION_LISTEN, SlotSet, UserUttered
from trainkit.dialogue.slot_filling import intent_is_wanted


@dataclass
class FormRun:
    """What the form did: its events, and the action that asks for the next slot."""

    events: list[dict[str, Any]] = field(default_factory=list)
    ask: str | None = None
    asked_slot: str | None = None
    rejected: bool = False


def ask_action(domain: Domain, form: str, slot: str) -> str | None:
    """The action that asks for `slot`, the most specific one the domain has."""
    for name in (f"utter_ask_{form}_{slot}", f"utter_ask_{slot}"):
        if name in domain.responses:
            return name
    for name in (f"action_ask_{form}_{slot}", f"action_ask_{slot}"):
        if name in domain.actions:
            return name
    return None


def filled_this_turn(tracker: DialogueStateTracker) -> set[str]:
    """The slots set since the latest user message."""
    filled: set[str] = set()
    for event in reversed(tracker.applied_events):
        if isinstance(event, UserUttered):
            break
        if isinstance(event, SlotSet):
            filled.add(event.key)
    return filled


def _trigger_values(tracker: DialogueStateTracker, required: list[str]) -> dict[str, Any]:
    message = tracker.latest_message
    intent = message.intent if message is not None else None
    values: dict[str, Any] = {}
    for name in required:
        slot = tracker.domain.slot(name)
        for mapping in slot.mappings if slot is not None else []:
            if mapping.get("type") == "from_trigger_intent" and intent_is_wanted(mapping, intent, []):
                if tracker.get_slot(name) != mapping.get("value"):
                    values[name] = mapping.get("value")
                break
    return values


def run_form(form: str, tracker: DialogueStateTracker) -> FormRun:
    """The form's events for the conversation in `tracker` (which is not changed)."""
    domain = tracker.domain
    required = list(domain.forms[form].get("required_slots") or [])
    run = FormRun()
    slots = dict(tracker.slots)
    if tracker.active_loop_name != form:
        run.events.append(rasa_event("active_loop", name=form))
        for name, value in _trigger_values(tracker, required).items():
            run.events.append(rasa_event("slot", name=name, value=value))
            slots[name] = value
    else:
        latest = tracker.latest_action.action_name if tracker.latest_action is not None else None
        checks = latest == ACTION_LISTEN and not tracker.active_loop_interrupted
        if checks and tracker.get_slot(REQUESTED_SLOT) is not None:
            if not filled_this_turn(tracker) & set(required):
                return FormRun(rejected=True)
    for name in required:
        if slots.get(name) is None:
            run.events.append(rasa_event("slot", name=REQUESTED_SLOT, value=name))
            run.ask = ask_action(domain, form, name)
            run.asked_slot = name
            return run
    run.events.append(rasa_event("slot", name=REQUESTED_SLOT, value=None))
    run.events.append(rasa_event("active_loop", name=None))
    return run
