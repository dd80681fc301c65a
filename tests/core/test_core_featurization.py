"""States: entity filtering, slot featurization per type, history slicing, sessions."""

from __future__ import annotations

import numpy as np
import pytest

from trainkit.core.featurization import (
    StateEncoder,
    slice_history,
    slot_features,
    state_key,
    states_for_events,
    training_examples,
)
from trainkit.core.tracker import DialogueStateTracker
from trainkit.data.domain import Slot
from trainkit.data.events import ActionExecuted, ActiveLoop, SlotSet, StoryEntity, UserUttered

DOMAIN = """
intents:
  - greet
  - check:
      use_entities: [number]
  - chat:
      ignore_entities: [number]
  - silent:
      use_entities: []
entities:
  - number
  - city:
      roles: [from, to]
  - mood:
      influence_conversation: false
slots:
  name: {type: text, mappings: [{type: custom}]}
  vip: {type: bool, mappings: [{type: custom}]}
  size:
    type: categorical
    values: [Small, large]
    mappings: [{type: custom}]
  amount: {type: float, min_value: 0, max_value: 10, mappings: [{type: custom}]}
  items: {type: list, mappings: [{type: custom}]}
  hidden: {type: text, influence_conversation: false, mappings: [{type: custom}]}
  blob: {type: any, mappings: [{type: custom}]}
forms:
  a_form:
    required_slots: [name]
responses:
  utter_hi: [{text: hi}]
"""

LISTEN = ActionExecuted("action_listen")


def user(intent, *entities):
    return UserUttered(intent, entities=tuple(StoryEntity(e, "x", role=r) for e, r in entities))


def last_state(domain, events):
    states, _ = states_for_events(events, domain)
    return states[-1]


@pytest.mark.parametrize(
    ("intent", "expected"),
    [
        ("greet", ["city", "city#from", "number"]),  # all entities that influence the dialogue
        ("check", ["number"]),  # use_entities picks
        ("chat", ["city", "city#from"]),  # ignore_entities removes
        ("silent", None),  # use_entities: [] drops all
    ],
)
def test_user_state_keeps_only_entities_the_intent_uses(make_domain, intent, expected):
    domain = make_domain(DOMAIN)
    state = last_state(domain, [LISTEN, user(intent, ("number", None), ("city", "from"), ("mood", None))])
    assert state["user"]["intent"] == intent
    assert state["user"].get("entities") == expected


def test_state_holds_prev_action_slots_and_loop_and_user_persists(make_domain):
    domain = make_domain(DOMAIN)
    events = [LISTEN, user("greet"), SlotSet("name", "Ann"), ActiveLoop("a_form"), ActionExecuted("utter_hi")]
    assert last_state(domain, events) == {
        "user": {"intent": "greet"},
        "prev_action": {"action_name": "utter_hi"},
        "slots": {"name": [1.0]},
        "active_loop": {"name": "a_form"},
    }


def test_states_come_one_per_action_plus_the_current_one(make_domain):
    domain = make_domain(DOMAIN)
    events = [LISTEN, user("greet"), ActionExecuted("utter_hi"), LISTEN]
    states, positions = states_for_events(events, domain)
    assert states[0] == {}
    assert len(states) == 4 and positions == [0, 2, 3]


@pytest.mark.parametrize(
    ("slot", "value", "features"),
    [
        (Slot("t", "text"), "anything", [1.0]),
        (Slot("t", "text"), None, [0.0]),
        (Slot("b", "bool"), True, [1.0, 1.0]),
        (Slot("b", "bool"), False, [1.0, 0.0]),
        (Slot("b", "bool"), None, [0.0, 0.0]),
        (Slot("c", "categorical", values=["Small", "large"]), "small", [1.0, 0.0, 0.0]),
        (Slot("c", "categorical", values=["Small", "large"]), "huge", [0.0, 0.0, 1.0]),
        (Slot("c", "categorical", values=["Small", "large"]), None, [0.0, 0.0, 0.0]),
        (Slot("f", "float", min_value=0.0, max_value=10.0), 2.5, [1.0, 0.25]),
        (Slot("f", "float", min_value=0.0, max_value=10.0), 99, [1.0, 1.0]),
        (Slot("f", "float"), None, [0.0, 0.0]),
        (Slot("l", "list"), ["a"], [1.0]),
        (Slot("l", "list"), [], [0.0]),
        (Slot("a", "any", influence_conversation=False), "x", []),
        (Slot("h", "text", influence_conversation=False), "x", []),
    ],
)
def test_slot_features_per_type(slot, value, features):
    assert slot_features(slot, value) == features


def test_unset_and_non_influencing_slots_are_left_out(make_domain):
    domain = make_domain(DOMAIN)
    events = [SlotSet("hidden", "x"), SlotSet("blob", {"a": 1}), SlotSet("items", []), SlotSet("vip", False)]
    assert last_state(domain, events) == {"slots": {"vip": [1.0, 0.0]}}


def test_rule_states_omit_slots_no_event_set(make_domain):
    domain = make_domain(DOMAIN.replace("name: {type: text,", "name: {type: text, initial_value: Bob,"))
    tracker = DialogueStateTracker(domain, [SlotSet("vip", True)])
    assert tracker.past_states()[-1]["slots"] == {"name": [1.0], "vip": [1.0, 1.0]}
    assert tracker.past_states(omit_unset_slots=True)[-1]["slots"] == {"vip": [1.0, 1.0]}


def test_bare_slot_listing_counts_as_set(make_domain):
    domain = make_domain(DOMAIN)
    state = last_state(domain, [SlotSet("name", None, bare=True), SlotSet("items", None, bare=True)])
    assert state["slots"] == {"name": [1.0], "items": [1.0]}


def test_max_history_keeps_the_latest_states():
    states = [{"prev_action": {"action_name": str(i)}} for i in range(6)]
    assert slice_history(states, 2) == states[-2:]
    assert slice_history(states, None) == states


def test_training_examples_label_actions_with_sliced_histories(make_domain):
    domain = make_domain(DOMAIN)
    events = [LISTEN, user("greet"), ActionExecuted("utter_hi"), LISTEN]
    examples = training_examples(events, domain, max_history=2, unpredictable=[0])
    assert [e.action for e in examples] == ["utter_hi", "action_listen"]
    assert len(examples[0].states) == 2 and examples[0].key == state_key(examples[0].states)


def test_session_start_drops_history_but_carries_slots(make_domain):
    domain = make_domain(DOMAIN)
    tracker = DialogueStateTracker(
        domain,
        [LISTEN, user("greet"), SlotSet("name", "Ann"), ActionExecuted("action_session_start"), LISTEN],
    )
    assert tracker.latest_message is None
    states = tracker.past_states()
    assert states == [{"slots": {"name": [1.0]}}, {"prev_action": {"action_name": "action_listen"}, "slots": {"name": [1.0]}}]
    restarted = DialogueStateTracker(domain, [SlotSet("name", "Ann"), ActionExecuted("action_restart")])
    assert restarted.get_slot("name") is None and restarted.past_states() == [{}]
    assert tracker.current_state() == states[-1]


def test_states_are_canonical_json(make_domain):
    domain = make_domain(DOMAIN)
    a = last_state(domain, [SlotSet("vip", True), SlotSet("name", "x")])
    b = last_state(domain, [SlotSet("name", "y"), SlotSet("vip", True)])
    assert state_key([a]) == state_key([b])


def test_encoder_layout_comes_from_the_domain(make_domain):
    domain = make_domain(DOMAIN)
    encoder = StateEncoder.from_domain(domain)
    matrix = encoder.encode([{"user": {"intent": "greet"}, "slots": {"size": [0.0, 1.0, 0.0]}}], 3)
    assert matrix.shape == (3, encoder.size)
    assert not matrix[:2].any()  # padding in front
    assert matrix[2, 0] == 1.0 and matrix[2, encoder.index["intent:greet"]] == 1.0
    assert matrix[2, encoder.slot_offsets["size"] + 1] == 1.0
    assert StateEncoder.from_dict(encoder.as_dict()) == encoder


def test_history_matrix_is_the_encoded_histories_side_by_side(make_domain):
    domain = make_domain(DOMAIN)
    encoder = StateEncoder.from_domain(domain)
    greet = {"user": {"intent": "greet"}, "slots": {"size": [0.0, 1.0, 0.0]}}
    listen = {"prev_action": {"action_name": "action_listen"}}
    # prefixes of one story share their state objects, as training examples do
    story = [greet, listen, {"user": {"intent": "greet"}}, {}]
    histories = [story[:1], story[:2], story, [], story[1:]]
    matrix = encoder.history_matrix(histories, 3)
    expected = np.stack([encoder.encode(states, 3) for states in histories]).reshape(len(histories), -1)
    assert matrix.shape == expected.shape
    assert np.array_equal(matrix.to_dense(), expected)
    # a sparse layout: about one non-zero per part of a state, not the window's width
    assert matrix.nnz == int(np.count_nonzero(expected))


def test_history_matrix_places_extra_columns_after_each_state(make_domain):
    domain = make_domain(DOMAIN)
    encoder = StateEncoder.from_domain(domain)
    states = [{"user": {"intent": "greet"}}, {"prev_action": {"action_name": "action_listen"}}]
    width = encoder.size + 2

    def extra(state):
        return (np.array([encoder.size + 1]), np.array([0.5])) if "user" in state else (np.zeros(0, int), np.zeros(0))

    dense = encoder.history_matrix([states], 3, width, extra).to_dense().reshape(3, width)
    assert not dense[0].any()
    assert dense[1, encoder.size + 1] == 0.5 and dense[1, encoder.index["intent:greet"]] == 1.0
    assert not dense[2, encoder.size :].any()
