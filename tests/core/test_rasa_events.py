"""Rasa's event JSON reads into the same trainkit events as trainkit's own dicts, and
malformed events are errors naming the event."""

from __future__ import annotations

import pytest

from trainkit.core.rasa_events import EventFormatError, event_to_rasa, events_from_json
from trainkit.core.tracker import DialogueStateTracker
from trainkit.data.domain import Domain, Slot
from trainkit.data.events import (
    ActionExecuted,
    ActionExecutionRejected,
    ActiveLoop,
    LoopInterrupted,
    SlotSet,
    StoryEntity,
    UserUttered,
)

DOMAIN = Domain(intents=["greet", "inform"], entities=["city"],
                slots=[Slot("city", "text"), Slot("count", "float", initial_value=1.0)])


def user(intent: str, **parse: object) -> dict:
    return {"event": "user", "text": f"text of {intent}", "timestamp": 1.5, "input_channel": "rest",
            "parse_data": {"intent": {"name": intent, "confidence": 0.9}, **parse}}


def test_a_rasa_tracker_reads_into_trainkit_events():
    events = events_from_json([
        {"event": "action", "name": "action_session_start", "policy": None, "confidence": 1.0},
        {"event": "session_started"},
        {"event": "action", "name": "action_listen"},
        user("inform", entities=[{"entity": "city", "value": "Oslo", "start": 0, "end": 4, "role": "to"}]),
        {"event": "user_featurization", "use_text_for_featurization": False},
        {"event": "slot", "name": "city", "value": "Oslo"},
        {"event": "action", "name": "travel_form"},
        {"event": "active_loop", "name": "travel_form"},
        {"event": "bot", "text": "When?", "data": {}},
        {"event": "action_execution_rejected", "name": "travel_form"},
        {"event": "loop_interrupted", "is_interrupted": True},
        {"event": "followup", "name": "action_x"},
    ], DOMAIN)
    assert events == [
        ActionExecuted("action_session_start"),
        ActionExecuted("action_listen"),
        UserUttered("inform", "text of inform", (StoryEntity("city", "Oslo", "to", None, 0, 4),)),
        SlotSet("city", "Oslo"),
        ActionExecuted("travel_form"),
        ActiveLoop("travel_form"),
        ActionExecutionRejected("travel_form"),
        LoopInterrupted(True),
    ]


def test_trainkit_s_own_dicts_still_read_the_same():
    own = [ActionExecuted("action_listen"), UserUttered("greet"), SlotSet("city", "Rome"), ActiveLoop(None)]
    assert events_from_json([e.as_dict() for e in own]) == own
    assert events_from_json([event_to_rasa(e) for e in own]) == own
    assert events_from_json(own) == own


def test_rewind_undo_restart_and_reset_slots_change_the_history_as_in_rasa():
    events = events_from_json([
        {"event": "action", "name": "action_listen"},
        user("greet"),
        {"event": "action", "name": "utter_greet"},
        {"event": "rewind"},
        user("inform"),
        {"event": "slot", "name": "city", "value": "Lima"},
        {"event": "action", "name": "utter_city"},
        {"event": "undo"},
        {"event": "reset_slots"},
    ], DOMAIN)
    assert events == [ActionExecuted("action_listen"), UserUttered("inform", "text of inform"),
                      SlotSet("city", "Lima"), SlotSet("city", None), SlotSet("count", 1.0)]
    restarted = events_from_json([{"event": "slot", "name": "city", "value": "Lima"},
                                  {"event": "action", "name": "action_restart"}, {"event": "restart"}])
    assert restarted[-1] == ActionExecuted("action_restart")
    assert DialogueStateTracker(DOMAIN, restarted).get_slot("city") is None
    assert events_from_json([{"event": "restart"}]) == [ActionExecuted("action_restart")]


@pytest.mark.parametrize(("items", "message"), [
    ([{"event": "slot", "value": 1}], "event 0 ('slot'): needs the slot's 'name'"),
    ([{"event": "action", "name": "a"}, {"event": "slot", "name": "city"}], "event 1 ('slot'): slot 'city' has no 'value'"),
    ([{"event": "action"}], "event 0 ('action'): needs a 'name'"),
    ([{"name": "x"}], "event 0: has no 'event' type"),
    (["user"], "event 0: must be a mapping"),
    ([{"event": "teleport"}], "event 0 ('teleport'): unknown event type"),
    ([{"event": "user", "parse_data": {"intent": "greet"}}], "'parse_data.intent' must be a mapping"),
    ([{"event": "user", "parse_data": {"entities": [{"value": 1}]}}], "entity 0 must be a mapping with an 'entity'"),
    ([{"event": "action", "name": 3}], "'name' must be a string, got int"),
    ([{"event": "reset_slots"}], "needs the domain"),
])
def test_malformed_events_name_their_position_and_problem(items, message):
    with pytest.raises(EventFormatError, match=None) as caught:
        events_from_json(items)
    assert message in str(caught.value)


def test_events_must_be_a_list():
    with pytest.raises(EventFormatError, match="events must be a list, got dict"):
        events_from_json({"event": "user"})  # type: ignore[arg-type]
