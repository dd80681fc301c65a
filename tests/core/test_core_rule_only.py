"""Slots and loops that only rules mention are hidden from the ML policies (Rasa's rule_only_data)."""

from __future__ import annotations

import numpy as np

from trainkit.core.memoization import AugmentedMemoizationPolicy, MemoizationPolicy
from trainkit.core.rule_only import RuleOnlyData, find_rule_only_data
from trainkit.core.ted import TEDPolicy
from trainkit.core.trackers import generate_trackers
from trainkit.data.events import ActionExecuted, ActiveLoop, SlotSet, UserUttered

DOMAIN = """
intents: [greet, bye, ask_vip, feedback]
slots:
  vip: {type: bool, mappings: [{type: custom}]}
  mood: {type: categorical, values: [good, bad], mappings: [{type: custom}]}
  rating: {type: text, mappings: [{type: custom}]}
forms:
  feedback_form:
    required_slots: [rating]
responses:
  utter_hi: [{text: hi}]
  utter_bye: [{text: bye}]
  utter_vip: [{text: hello vip}]
actions: [action_check_vip]
"""

DATA = """
rules:
  - rule: check vip
    steps:
      - intent: ask_vip
      - action: action_check_vip
      - slot_was_set:
          - vip: true
      - action: utter_vip
  - rule: feedback
    steps:
      - intent: feedback
      - action: feedback_form
      - active_loop: feedback_form
stories:
  - story: greet and leave in a good mood
    steps:
      - intent: greet
      - action: utter_hi
      - slot_was_set:
          - mood: good
      - intent: bye
      - action: utter_bye
"""

LISTEN = ActionExecuted("action_listen")


def _setup(make_graph, make_domain):
    domain = make_domain(DOMAIN)
    return generate_trackers(make_graph(DATA), domain, {"augmentation_factor": 0}), domain


def test_rule_only_slots_and_loops_are_those_no_story_state_has(make_graph, make_domain):
    trackers, domain = _setup(make_graph, make_domain)
    assert find_rule_only_data(trackers, domain) == RuleOnlyData(slots=("vip",), loops=("feedback_form",))


def _with_rule_only_features(events):
    return [SlotSet("vip", True), ActiveLoop("feedback_form"), *events]


def test_memoization_recalls_a_story_although_rule_only_features_are_set(make_graph, make_domain):
    trackers, domain = _setup(make_graph, make_domain)
    story = [LISTEN, UserUttered("greet"), ActionExecuted("utter_hi"), SlotSet("mood", "good"), LISTEN,
             UserUttered("bye")]
    for cls in (MemoizationPolicy, AugmentedMemoizationPolicy):
        policy = cls(dict(cls.defaults)).fit(trackers, domain)
        assert policy.recall(story, domain) == "utter_bye"
        events = story[:3] + [SlotSet("vip", True), ActiveLoop("feedback_form")] + story[3:]
        assert policy.recall(events, domain) == "utter_bye"


def test_ted_prediction_ignores_rule_only_features(make_graph, make_domain):
    trackers, domain = _setup(make_graph, make_domain)
    policy = TEDPolicy({**TEDPolicy.defaults, "epochs": 5, "random_seed": 1}).fit(trackers, domain)
    story = [LISTEN, UserUttered("greet"), ActionExecuted("utter_hi"), LISTEN, UserUttered("bye")]
    plain = policy.predict_action_probabilities(story, domain).probabilities
    hidden = policy.predict_action_probabilities(_with_rule_only_features(story), domain).probabilities
    np.testing.assert_allclose(plain, hidden)
    # a slot the stories do use still changes the prediction
    other = policy.predict_action_probabilities([SlotSet("mood", "bad"), *story], domain).probabilities
    assert not np.allclose(plain, other)
