"""A live conversation follows the trained rules: slots from entities and intents, a form
asking for its slots, responses with variations, conditions, templating and buttons,
custom actions on an action server, restarts and the action limit."""

from __future__ import annotations

import random

import pytest

from trainkit.dialogue.action_server import ActionServerClient
from trainkit.dialogue.conversation import Conversation
from trainkit.dialogue.endpoints import ActionEndpoint

BOOKING = ["hello", "I need a repair for my bike", "when are you open", "it's a road bike", "on friday"]


def talk(conversation: Conversation, texts: list[str]) -> list[list[str]]:
    return [[m.get("text") for m in conversation.handle_message(text).messages] for text in texts]


def test_form_collects_slots_through_an_interruption_and_the_rules_finish_the_booking(spokebot):
    conversation = Conversation(spokebot, rng=random.Random(0))
    said = talk(conversation, BOOKING)
    assert said[1] == ["What kind of bike is it?"]
    # A rule answers the question the form cannot use, then the form asks again.
    assert said[2] == ["The workshop is open 8:00 to 18:00, Monday to Saturday.", "What kind of bike is it?"]
    assert said[3] == ["Which day would you bring your road bike in?"]
    assert said[4] == ["Do you want the express service (same day)?"]
    reply = conversation.handle_message("yes please")
    assert reply.actions == ["repair_form", "utter_confirm", "action_book_repair", "utter_booked"]
    assert reply.messages[0]["text"] == "Express repair of your road bike on friday, done the same day."
    assert reply.notices == ["custom action 'action_book_repair' would run here (no action_endpoint in endpoints.yml)"]
    tracker = conversation.tracker()
    assert tracker.slots["bike_type"] == "road" and tracker.slots["day"] == "friday"
    assert tracker.slots["express"] is True and tracker.active_loop_name is None
    kinds = [e["event"] for e in conversation.events]
    assert "action_execution_rejected" in kinds and kinds[-1] == "action"


def test_the_condition_on_a_slot_picks_the_other_variation(spokebot):
    conversation = Conversation(spokebot, rng=random.Random(0))
    talk(conversation, BOOKING)
    reply = conversation.handle_message("no thanks")
    assert reply.messages[0]["text"] == "Standard repair of your road bike on friday, ready two days later."
    assert conversation.tracker().slots["express"] is False


def test_the_form_asks_with_buttons_and_a_mapping_conditioned_on_another_slot_does_not_fill(spokebot):
    conversation = Conversation(spokebot, rng=random.Random(0))
    reply = conversation.handle_message("/book_repair")
    assert reply.messages == [{"text": "What kind of bike is it?", "buttons": [
        {"title": "Road bike", "payload": '/inform{"bike_type": "road"}'},
        {"title": "Mountain bike", "payload": '/inform{"bike_type": "mountain"}'}]}]
    # `express` maps from `affirm` only while it is the requested slot.
    reply = conversation.handle_message("/affirm")
    assert conversation.tracker().slots["express"] is None
    reply = conversation.handle_message('/inform{"bike_type": "mountain", "day": "monday"}')
    assert [m["text"] for m in reply.messages] == ["Do you want the express service (same day)?"]


def test_variations_are_chosen_by_the_seeded_generator(spokebot):
    def greeting(seed: int) -> str:
        return Conversation(spokebot, rng=random.Random(seed)).handle_message("/greet").messages[0]["text"]

    assert greeting(5) == greeting(5)
    assert len({greeting(seed) for seed in range(12)}) == 2


def test_restart_forgets_the_slots_and_starts_a_new_session(spokebot):
    conversation = Conversation(spokebot, rng=random.Random(0))
    talk(conversation, ["/book_repair", '/inform{"bike_type": "city"}'])
    assert conversation.tracker().slots["bike_type"] == "city"
    reply = conversation.handle_message("/restart")
    assert reply.actions == ["action_restart"]
    tracker = conversation.tracker()
    assert tracker.slots["bike_type"] is None and tracker.active_loop_name is None
    assert conversation.handle_message("/book_repair").messages[0]["text"] == "What kind of bike is it?"


def test_the_bot_listens_after_the_action_limit(spokebot):
    conversation = Conversation(spokebot, rng=random.Random(0), max_actions=1)
    talk(conversation, ["/book_repair", '/inform{"bike_type": "road"}', '/inform{"day": "friday"}'])
    reply = conversation.handle_message("/affirm")
    assert reply.actions == ["repair_form"]
    assert reply.notices == ["stopped after 1 actions without action_listen; listening now"]
    assert conversation.events[-1]["name"] == "action_listen"


def test_the_event_log_is_rasa_json_the_model_reads_back(spokebot):
    conversation = Conversation(spokebot, rng=random.Random(0))
    talk(conversation, BOOKING[:2])
    user = next(e for e in conversation.events if e["event"] == "user")
    assert user["parse_data"]["intent"]["name"] == "greet"
    assert {"event": "slot", "name": "requested_slot", "value": "bike_type"}.items() <= next(
        e for e in conversation.events if e["event"] == "slot").items()
    # Read back, the log leads to the same decisions: listen after the form asked.
    assert conversation.events[-1]["name"] == "action_listen"
    assert spokebot.predict_next_action(conversation.events[:-1])["action"] == "action_listen"
    after = [*conversation.events, {"event": "user", "text": "road",
                                    "parse_data": {"intent": {"name": "inform", "confidence": 1.0}, "entities": []}}]
    assert spokebot.predict_next_action(after)["action"] == "repair_form"


def test_custom_actions_run_on_the_action_server_and_their_events_apply(spokebot, action_server):
    client = ActionServerClient(ActionEndpoint(action_server.url))
    conversation = Conversation(spokebot, "rider-1", random.Random(0), client)
    talk(conversation, BOOKING)
    reply = conversation.handle_message("yes")
    assert [m["text"] for m in reply.messages] == [
        "Express repair of your road bike on friday, done the same day.", "Booking saved.",
        "Your ticket number is R-road-friday."]
    assert reply.notices == []
    assert reply.messages[1] == {"text": "Booking saved."}  # rasa_sdk's empty keys are dropped
    request = action_server.requests[-1]
    assert request["next_action"] == "action_book_repair" and request["sender_id"] == "rider-1"
    assert request["tracker"]["slots"]["express"] is True
    assert request["tracker"]["latest_message"]["intent"]["name"] == "affirm"
    assert request["domain"]["forms"]["repair_form"]["required_slots"] == ["bike_type", "day", "express"]
    assert any(e["event"] == "bot" for e in request["tracker"]["events"])


def test_a_rejected_custom_action_is_logged_and_an_unreachable_server_is_a_notice(spokebot, action_server):
    action_server.reject.add("action_book_repair")
    conversation = Conversation(spokebot, rng=random.Random(0),
                                action_server=ActionServerClient(ActionEndpoint(action_server.url)))
    talk(conversation, BOOKING)
    reply = conversation.handle_message("yes")
    assert {"event": "action_execution_rejected", "name": "action_book_repair"}.items() <= next(
        e for e in conversation.events if e["event"] == "action_execution_rejected"
        and e["name"] == "action_book_repair").items()
    # The rejected action is left out of the next prediction instead of being asked again.
    assert [r["next_action"] for r in action_server.requests].count("action_book_repair") == 1
    assert reply.actions == ["repair_form", "utter_confirm"] and reply.notices == []

    unreachable = ActionServerClient(ActionEndpoint("http://127.0.0.1:9/webhook", timeout=2))
    conversation = Conversation(spokebot, rng=random.Random(0), action_server=unreachable)
    talk(conversation, BOOKING)
    reply = conversation.handle_message("yes")
    assert any("cannot reach the action server" in notice for notice in reply.notices)
    assert conversation.events[-1]["name"] == "action_listen"


def test_a_model_without_policies_cannot_hold_a_conversation(spokebot):
    class NluOnly:
        ensemble = None
        name = "nlu-only.tar.gz"

    with pytest.raises(Exception, match="no dialogue policies"):
        Conversation(NluOnly())


def test_a_message_after_the_session_expired_starts_a_new_session(spokebot):
    now = [1000.0]
    conversation = Conversation(spokebot, rng=random.Random(0), clock=lambda: now[0])
    talk(conversation, ["/book_repair", '/inform{"bike_type": "road"}'])
    now[0] += 61 * 60  # spokebot keeps Rasa's default of 60 minutes
    talk(conversation, ["/greet"])
    starts = [e for e in conversation.events if e["event"] == "session_started"]
    assert len(starts) == 2
    tracker = conversation.tracker()
    assert tracker.active_loop_name is None and tracker.slots["bike_type"] == "road"  # slots carry over


def test_the_form_s_validation_action_can_refuse_a_value(spokebot, action_server):
    conversation = Conversation(spokebot, rng=random.Random(0),
                                action_server=ActionServerClient(ActionEndpoint(action_server.url)))
    talk(conversation, ["/book_repair", '/inform{"bike_type": "road"}'])
    reply = conversation.handle_message("is sunday possible")
    assert [m["text"] for m in reply.messages] == ["We are closed on Sundays.",
                                                    "Which day would you bring your road bike in?"]
    assert conversation.tracker().slots["day"] is None
    validations = [r for r in action_server.requests if r["next_action"] == "validate_repair_form"]
    assert len(validations) == 3


def test_custom_slot_mappings_run_their_action_after_every_message_and_keep_only_slots(spokebot, action_server):
    conversation = Conversation(spokebot, rng=random.Random(0),
                                action_server=ActionServerClient(ActionEndpoint(action_server.url)))
    said = talk(conversation, ["/greet", "/bot_challenge"])
    assert conversation.tracker().slots["visits"] == 2
    assert said[1] == ["I am a bot that books bike repairs."]  # the followup it returned was dropped
    assert [r["next_action"] for r in action_server.requests] == ["action_count_messages"] * 2


def test_the_fallback_forgets_the_message_it_could_not_handle(spokebot):
    conversation = Conversation(spokebot, rng=random.Random(0))
    reply = conversation.handle_message("/deny")
    assert reply.actions == ["action_default_fallback"]
    assert conversation.tracker().latest_message is None  # reverted
    assert talk(conversation, ["/bot_challenge"]) == [["I am a bot that books bike repairs."]]


def test_the_session_start_intent_starts_a_session_and_listens(spokebot):
    conversation = Conversation(spokebot, rng=random.Random(0))
    talk(conversation, ["/book_repair"])
    reply = conversation.handle_message("/session_start")
    assert reply.actions == ["action_session_start"]
    assert conversation.events[-1]["name"] == "action_listen"
    assert conversation.tracker().active_loop_name is None



def test_a_retrieval_intent_is_answered_with_the_response_the_selector_chose(spokebot):
    conversation = Conversation(spokebot, rng=random.Random(0))
    assert talk(conversation, ["how much does a repair cost", "can I borrow a pump"]) == [
        ["A standard repair costs 40 euros, express 60."], ["We lend out tools at the counter, free of charge."]]
