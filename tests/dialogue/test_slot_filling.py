"""Slot mappings applied to a parsed message, as Rasa 3's `action_extract_slots` does."""

from __future__ import annotations

import textwrap

from trainkit.core.tracker import DialogueStateTracker
from trainkit.data.domain_reader import parse_domain
from trainkit.data.events import ActionExecuted, ActiveLoop, SlotSet, UserUttered
from trainkit.data.yaml_io import parse_yaml
from trainkit.dialogue.forms import run_form
from trainkit.dialogue.slot_filling import extract_slots

DOMAIN = parse_domain(parse_yaml(textwrap.dedent("""\
    version: "3.1"
    intents: [inform, chitchat, deny, start_trip, affirm]
    entities: [city, airline]
    slots:
      origin:
        type: text
        mappings:
          - type: from_entity
            entity: city
            role: from
      destination:
        type: text
        mappings:
          - type: from_entity
            entity: city
            intent: inform
      stops:
        type: list
        mappings:
          - type: from_entity
            entity: city
            role: via
      note:
        type: text
        mappings:
          - type: from_text
            not_intent: deny
            conditions:
              - active_loop: trip_form
                requested_slot: note
      flexible:
        type: bool
        mappings:
          - type: from_trigger_intent
            intent: start_trip
            value: true
          - type: from_intent
            intent: affirm
            value: true
      home:
        type: text
        mappings:
          - type: from_entity
            entity: airline
      work:
        type: text
        mappings:
          - type: from_entity
            entity: airline
    forms:
      trip_form:
        ignored_intents: [chitchat]
        required_slots: [destination, note, flexible]
      airline_form:
        required_slots: [home, work]
    responses:
      utter_ask_destination:
        - text: Where to?
    """), "domain.yml"), "domain.yml")


def parse(intent: str, text: str = "some text", entities: list[dict] | None = None) -> dict:
    return {"text": text, "intent": {"name": intent, "confidence": 1.0}, "entities": entities or []}


def tracker(*events) -> DialogueStateTracker:
    return DialogueStateTracker(DOMAIN, [ActionExecuted("action_listen"), *events])


def city(value: str, role: str | None = None) -> dict:
    return {"entity": "city", "value": value, "role": role}


def test_entities_fill_by_role_and_intent_and_lists_take_every_value():
    found = extract_slots(parse("inform", entities=[city("Oslo", "from"), city("Rome"), city("Bern", "via"),
                                                    city("Graz", "via")]), tracker())
    assert found == {"origin": "Oslo", "destination": "Rome", "stops": ["Bern", "Graz"]}
    assert extract_slots(parse("chitchat", entities=[city("Rome")]), tracker()) == {}


def test_conditions_need_the_loop_and_requested_slot_and_not_intent_filters():
    message = parse("inform", "window seat please")
    assert "note" not in extract_slots(message, tracker())
    in_form = tracker(ActiveLoop("trip_form"), SlotSet("requested_slot", "note"))
    assert extract_slots(message, in_form)["note"] == "window seat please"
    assert "note" not in extract_slots(parse("deny", "no"), in_form)
    other_slot = tracker(ActiveLoop("trip_form"), SlotSet("requested_slot", "destination"))
    assert "note" not in extract_slots(message, other_slot)


def test_the_active_form_ignores_its_ignored_intents_and_unchanged_values_are_not_set_again():
    in_form = tracker(ActiveLoop("trip_form"), SlotSet("requested_slot", "destination"))
    assert extract_slots(parse("chitchat", entities=[city("Rome", "from")]), in_form) == {}
    assert extract_slots(parse("inform", entities=[city("Oslo", "from")]), tracker(SlotSet("origin", "Oslo"))) == {}


def test_an_entity_two_form_slots_map_only_fills_the_requested_one():
    airline = [{"entity": "airline", "value": "Skyways"}]
    asking_work = tracker(ActiveLoop("airline_form"), SlotSet("requested_slot", "work"))
    assert extract_slots(parse("inform", entities=airline), asking_work) == {"work": "Skyways"}
    assert extract_slots(parse("inform", entities=airline), tracker()) == {"home": "Skyways", "work": "Skyways"}


def test_a_starting_form_takes_its_trigger_intent_value_and_asks_for_the_first_empty_slot():
    run = run_form("trip_form", tracker(UserUttered("start_trip")))
    assert [(e["event"], e.get("name"), e.get("value")) for e in run.events] == [
        ("active_loop", "trip_form", None), ("slot", "flexible", True), ("slot", "requested_slot", "destination")]
    assert run.ask == "utter_ask_destination"


def test_an_active_form_rejects_input_that_fills_none_of_its_slots_and_ends_when_all_are_filled():
    asking = [ActiveLoop("trip_form"), SlotSet("requested_slot", "destination"), ActionExecuted("trip_form"),
              ActionExecuted("action_listen"), UserUttered("chitchat")]
    assert run_form("trip_form", tracker(*asking)).rejected
    after_interruption = [*asking, ActionExecuted("utter_chitchat")]
    assert run_form("trip_form", tracker(*after_interruption)).asked_slot == "destination"
    filled = [*asking[:-1], UserUttered("inform"), SlotSet("destination", "Rome"), SlotSet("note", "x"),
              SlotSet("flexible", False)]
    run = run_form("trip_form", tracker(*filled))
    assert not run.rejected and run.ask is None
    assert [(e["event"], e["name"], e.get("value")) for e in run.events] == [
        ("slot", "requested_slot", None), ("active_loop", None, None)]
