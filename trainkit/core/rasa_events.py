"""Rasa's event JSON, read into trainkit's dialogue events and written back.

Rasa's trackers, its HTTP API and its action server all speak one event format
(`{"event": "user", "text": ..., "parse_data": {...}}`, `{"event": "slot", "name": ...}`).
trainkit's own events serialise differently (`{"event": "slot", "key": ...}`), so both
shapes are accepted here, per event, and anything else is an error naming the event's
position and what is wrong, never a `KeyError` or a silently wrong event.

Some Rasa events only change the list they are in (`rewind` drops the latest user turn,
`undo` the latest bot action) or need the domain (`reset_slots`), so reading is a
stateful walk over the list, not a per-event function.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from trainkit.core.tracker import ACTION_RESTART, ACTION_SESSION_START
from trainkit.data.domain import Domain
from trainkit.data.events import (
    ACTION_LISTEN,
    ActionExecuted,
    ActionExecutionRejected,
    ActiveLoop,
    Event,
    LoopInterrupted,
    SlotSet,
    StoryEntity,
    UserUttered,
    thaw,
)
from trainkit.errors import TrainkitError

# Rasa events that say nothing about the dialogue state the policies see.
_NO_STATE_EVENTS = frozenset({
    "bot", "user_featurization", "followup", "pause", "resume", "export", "agent", "reminder",
    "cancel_reminder", "form_validation", "wrong_action", "wrong_utterance", "warning_utterance",
    "stack", "routing_session_ended", "flow_started", "flow_completed",
})


class EventFormatError(TrainkitError):
    """An event in a list of events is not one trainkit can read."""


def _fail(index: int, kind: Any, message: str) -> EventFormatError:
    what = f"event {index}" if kind is None else f"event {index} ({kind!r})"
    return EventFormatError(f"{what}: {message}")


def _text(data: Mapping[str, Any], key: str, index: int, kind: str, required: bool) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise _fail(index, kind, f"'{key}' is missing")
        return None
    if not isinstance(value, str):
        raise _fail(index, kind, f"'{key}' must be a string, got {type(value).__name__}")
    return value


def _entities(items: Any, index: int) -> tuple[StoryEntity, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        raise _fail(index, "user", f"'entities' must be a list, got {type(items).__name__}")
    out = []
    for position, item in enumerate(items):
        if not isinstance(item, Mapping) or not isinstance(item.get("entity"), str):
            raise _fail(index, "user", f"entity {position} must be a mapping with an 'entity' name")
        for key in ("start", "end"):
            if item.get(key) is not None and not isinstance(item.get(key), int):
                raise _fail(index, "user", f"entity {position}: '{key}' must be an integer")
        for key in ("role", "group"):
            if item.get(key) is not None and not isinstance(item.get(key), str):
                raise _fail(index, "user", f"entity {position}: '{key}' must be a string")
        out.append(StoryEntity(item["entity"], item.get("value"), item.get("role"), item.get("group"),
                               item.get("start"), item.get("end")))
    return tuple(out)


def _user(data: Mapping[str, Any], index: int) -> UserUttered:
    """Rasa's `parse_data` (intent, entities) or trainkit's flat `intent`/`entities`."""
    text = _text(data, "text", index, "user", required=False)
    parse_data = data.get("parse_data")
    if parse_data is None:
        intent = _text(data, "intent", index, "user", required=False)
        entities = _entities(data.get("entities"), index)
        full = _text(data, "full_retrieval_intent", index, "user", required=False)
        return UserUttered(intent, text, entities, full)
    if not isinstance(parse_data, Mapping):
        raise _fail(index, "user", f"'parse_data' must be a mapping, got {type(parse_data).__name__}")
    intent_data = parse_data.get("intent") or {}
    if not isinstance(intent_data, Mapping):
        raise _fail(index, "user", "'parse_data.intent' must be a mapping with a 'name'")
    intent = _text(intent_data, "name", index, "user", required=False)
    entities = _entities(parse_data.get("entities"), index)
    full = _text(intent_data, "full_retrieval_intent_name", index, "user", required=False)
    if full is None and intent is not None:
        selected = (parse_data.get("response_selector") or {}).get(intent)
        if isinstance(selected, Mapping):
            key = (selected.get("response") or {}).get("intent_response_key")
            full = key if isinstance(key, str) else None
    return UserUttered(intent, text, entities, full)


class RasaEventReader:
    """Reads events one at a time into a list of trainkit events."""

    def __init__(self, domain: Domain | None = None) -> None:
        self.domain = domain
        self.events: list[Event] = []
        self._count = 0

    def read_all(self, items: Iterable[Any]) -> list[Event]:
        """Read every item; the result is `self.events`."""
        for item in items:
            self.read(item)
        return self.events

    def read(self, item: Any) -> None:
        """Apply one event given as a trainkit event object or a Rasa/trainkit dict."""
        index = self._count
        self._count += 1
        if not isinstance(item, Mapping):
            if isinstance(item, (UserUttered, ActionExecuted, SlotSet, ActiveLoop, ActionExecutionRejected,
                                 LoopInterrupted)):
                self.events.append(item)
                return
            raise _fail(index, None, f"must be a mapping with an 'event' key, got {type(item).__name__}")
        kind = item.get("event")
        if not isinstance(kind, str):
            raise _fail(index, None, "has no 'event' type (e.g. 'user', 'action', 'slot')")
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, item, index)
        elif kind not in _NO_STATE_EVENTS:
            raise _fail(index, kind, f"unknown event type; known: {', '.join(sorted(_KNOWN))}")

    # ------------------------------------------------------------------ handlers

    def _user(self, data: Mapping[str, Any], index: int) -> None:
        self.events.append(_user(data, index))

    def _action(self, data: Mapping[str, Any], index: int) -> None:
        name = data.get("name", data.get("action_name"))
        if name is not None and not isinstance(name, str):
            raise _fail(index, "action", f"'name' must be a string, got {type(name).__name__}")
        text = _text(data, "action_text", index, "action", required=False)
        if name is None and text is None:
            raise _fail(index, "action", "needs a 'name' (or an end-to-end 'action_text')")
        self.events.append(ActionExecuted(name, text if name is None else None))

    def _slot(self, data: Mapping[str, Any], index: int) -> None:
        name = data.get("name", data.get("key"))
        if not isinstance(name, str):
            raise _fail(index, "slot", "needs the slot's 'name' as a string")
        if "value" not in data and not data.get("bare"):
            raise _fail(index, "slot", f"slot {name!r} has no 'value' (use null to unset it)")
        self.events.append(SlotSet(name, data.get("value"), bool(data.get("bare", False))))

    def _active_loop(self, data: Mapping[str, Any], index: int) -> None:
        self.events.append(ActiveLoop(_text(data, "name", index, str(data["event"]), required=False)))

    def _rejected(self, data: Mapping[str, Any], index: int) -> None:
        name = data.get("name", data.get("action_name"))
        if not isinstance(name, str):
            raise _fail(index, "action_execution_rejected", "needs the rejected action's 'name'")
        self.events.append(ActionExecutionRejected(name))

    def _interrupted(self, data: Mapping[str, Any], index: int) -> None:
        self.events.append(LoopInterrupted(bool(data.get("is_interrupted", True))))

    def _restart(self, data: Mapping[str, Any], index: int) -> None:
        self._reset_once(ACTION_RESTART)

    def _session_started(self, data: Mapping[str, Any], index: int) -> None:
        self._reset_once(ACTION_SESSION_START)

    def _reset_once(self, action: str) -> None:
        """Rasa logs `action_restart` and then `restart`: one reset, not two."""
        latest = self.events[-1] if self.events else None
        if not (isinstance(latest, ActionExecuted) and latest.action_name == action):
            self.events.append(ActionExecuted(action))

    def _reset_slots(self, data: Mapping[str, Any], index: int) -> None:
        if self.domain is None:
            raise _fail(index, "reset_slots", "needs the domain to know the slots' initial values")
        self.events.extend(SlotSet(slot.name, slot.initial_value) for slot in self.domain.slots)

    def _rewind(self, data: Mapping[str, Any], index: int) -> None:
        """Rasa's `UserUtteranceReverted`: forget back to before the latest user message."""
        while self.events:
            if isinstance(self.events.pop(), UserUttered):
                break

    def _undo(self, data: Mapping[str, Any], index: int) -> None:
        """Rasa's `ActionReverted`: forget the latest bot action and what followed it."""
        for position in range(len(self.events) - 1, -1, -1):
            event = self.events[position]
            if isinstance(event, ActionExecuted) and event.action_name != ACTION_LISTEN:
                del self.events[position:]
                return

    def _entities_added(self, data: Mapping[str, Any], index: int) -> None:
        added = _entities(data.get("entities"), index)
        for position in range(len(self.events) - 1, -1, -1):
            event = self.events[position]
            if isinstance(event, UserUttered):
                self.events[position] = replace(event, entities=event.entities + added)
                return


_HANDLERS = {
    "user": RasaEventReader._user,
    "action": RasaEventReader._action,
    "slot": RasaEventReader._slot,
    "active_loop": RasaEventReader._active_loop,
    "form": RasaEventReader._active_loop,
    "action_execution_rejected": RasaEventReader._rejected,
    "loop_interrupted": RasaEventReader._interrupted,
    "restart": RasaEventReader._restart,
    "session_started": RasaEventReader._session_started,
    "reset_slots": RasaEventReader._reset_slots,
    "rewind": RasaEventReader._rewind,
    "undo": RasaEventReader._undo,
    "entities": RasaEventReader._entities_added,
}
_KNOWN = frozenset(_HANDLERS) | _NO_STATE_EVENTS


def events_from_json(items: Sequence[Any], domain: Domain | None = None) -> list[Event]:
    """trainkit events for a list of Rasa-shaped (or trainkit-shaped) event dicts."""
    if not isinstance(items, Sequence) or isinstance(items, (str, bytes)):
        raise EventFormatError(f"events must be a list, got {type(items).__name__}")
    return RasaEventReader(domain).read_all(items)


# ----------------------------------------------------------------- writing events


def rasa_event(kind: str, **fields: Any) -> dict[str, Any]:
    """A Rasa event dict stamped with the current time."""
    return {"event": kind, "timestamp": time.time(), **fields}


def user_event(parse_data: Mapping[str, Any], input_channel: str | None = None,
               message_id: str | None = None, metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Rasa's `user` event for a parsed message."""
    return rasa_event("user", text=parse_data.get("text"), parse_data=dict(parse_data),
                      input_channel=input_channel, message_id=message_id, metadata=dict(metadata or {}))


def event_to_rasa(event: Event) -> dict[str, Any]:
    """Rasa's dict for one of trainkit's own events (policies' extra events, tests)."""
    if isinstance(event, ActionExecuted):
        return rasa_event("action", name=event.action_name, action_text=event.action_text)
    if isinstance(event, SlotSet):
        return rasa_event("slot", name=event.key, value=thaw(event.value))
    if isinstance(event, ActiveLoop):
        return rasa_event("active_loop", name=event.name)
    if isinstance(event, ActionExecutionRejected):
        return rasa_event("action_execution_rejected", name=event.action_name)
    if isinstance(event, LoopInterrupted):
        return rasa_event("loop_interrupted", is_interrupted=event.is_interrupted)
    if isinstance(event, UserUttered):
        intent = {"name": event.intent, "confidence": 1.0}
        entities = [e.as_dict() for e in event.entities]
        return rasa_event("user", text=event.text, parse_data={
            "text": event.text, "intent": intent, "intent_ranking": [intent], "entities": entities})
    raise TypeError(f"{type(event).__name__} has no Rasa event form")
