"""RulePolicy: rules, conditions, conversation start, forms, fallback, contradictions."""

from __future__ import annotations

import pytest

from trainkit.core.rule_policy import InvalidRule, RulePolicy
from trainkit.core.trackers import generate_trackers
from trainkit.data.events import (
    ActionExecuted,
    ActionExecutionRejected,
    ActiveLoop,
    LoopInterrupted,
    SlotSet,
    UserUttered,
    event_from_dict,
)
from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.errors import TrainkitError

DOMAIN = """
intents: [greet, bye, ask_hours, order, inform, chitchat, thank]
slots:
  vip: {type: bool, mappings: [{type: custom}]}
  drink: {type: text, mappings: [{type: custom}]}
forms:
  order_form:
    required_slots: [drink]
responses:
  utter_hi: [{text: hi}]
  utter_hi_vip: [{text: hello again}]
  utter_welcome_new: [{text: welcome}]
  utter_bye: [{text: bye}]
  utter_hours: [{text: 9-5}]
  utter_chitchat: [{text: ok}]
  utter_rephrase: [{text: what?}]
  utter_thanks: [{text: np}]
actions: [action_submit]
"""

RULES = """
rules:
  - rule: greet
    steps:
      - intent: greet
      - action: utter_hi
  - rule: greet a vip
    condition:
      - slot_was_set:
          - vip: true
    steps:
      - intent: greet
      - action: utter_hi_vip
  - rule: welcome at the start
    conversation_start: true
    steps:
      - intent: greet
      - action: utter_welcome_new
  - rule: start form
    steps:
      - intent: order
      - action: order_form
      - active_loop: order_form
  - rule: submit
    condition:
      - active_loop: order_form
    steps:
      - action: order_form
      - active_loop: null
      - action: action_submit
    wait_for_user_input: false
  - rule: hours during the form
    condition:
      - active_loop: order_form
    steps:
      - intent: ask_hours
      - action: utter_hours
      - action: order_form
      - active_loop: order_form
  - rule: hours
    steps:
      - intent: ask_hours
      - action: utter_hours
  - rule: nlu fallback
    steps:
      - intent: nlu_fallback
      - action: utter_rephrase
"""

LISTEN = ActionExecuted("action_listen")
CONFIG = dict(RulePolicy.defaults)


def train(make_graph, make_domain, rules=RULES, stories="", **config):
    domain = make_domain(DOMAIN)
    trackers = generate_trackers(make_graph(rules + stories), domain, {"augmentation_factor": 0})
    return RulePolicy({**CONFIG, **config}).fit(trackers, domain), domain


def best(policy, events, domain):
    prediction = policy.predict_action_probabilities(events, domain)
    return domain.action_names_or_texts[prediction.best_index], prediction.max_confidence


def test_rule_predicts_its_action_then_listen(make_graph, make_domain):
    policy, domain = train(make_graph, make_domain)
    events = [ActionExecuted("utter_bye"), LISTEN, UserUttered("greet")]
    assert best(policy, events, domain) == ("utter_hi", 1.0)
    assert best(policy, events + [ActionExecuted("utter_hi")], domain) == ("action_listen", 1.0)


def test_slot_condition_selects_the_more_specific_rule(make_graph, make_domain):
    policy, domain = train(make_graph, make_domain)
    events = [SlotSet("vip", True), ActionExecuted("utter_bye"), LISTEN, UserUttered("greet")]
    assert best(policy, events, domain) == ("utter_hi_vip", 1.0)
    events[0] = SlotSet("vip", False)
    assert best(policy, events, domain) == ("utter_hi", 1.0)


def test_conversation_start_rule_applies_only_at_the_start(make_graph, make_domain):
    policy, domain = train(make_graph, make_domain)
    assert best(policy, [LISTEN, UserUttered("greet")], domain) == ("utter_welcome_new", 1.0)
    # a session start opens a new conversation
    events = [LISTEN, UserUttered("bye"), ActionExecuted("action_session_start"), LISTEN, UserUttered("greet")]
    assert best(policy, events, domain) == ("utter_welcome_new", 1.0)


def test_active_form_is_predicted_and_listen_after_it(make_graph, make_domain):
    policy, domain = train(make_graph, make_domain)
    events = [LISTEN, UserUttered("bye"), ActionExecuted("utter_bye"), LISTEN, UserUttered("order")]
    assert best(policy, events, domain) == ("order_form", 1.0)
    events += [ActionExecuted("order_form"), ActiveLoop("order_form")]
    prediction = policy.predict_action_probabilities(events, domain)
    assert prediction.is_no_user_prediction
    assert best(policy, events, domain) == ("action_listen", 1.0)
    events += [LISTEN, UserUttered("inform")]
    assert best(policy, events, domain) == ("order_form", 1.0)
    # the form finished: the submit rule (which does not wait for the user) takes over
    events += [ActionExecuted("order_form"), ActiveLoop(None)]
    assert best(policy, events, domain) == ("action_submit", 1.0)


def test_form_runs_on_user_input_until_it_rejects_it(make_graph, make_domain):
    policy, domain = train(make_graph, make_domain)
    events = [LISTEN, UserUttered("order"), ActionExecuted("order_form"), ActiveLoop("order_form"), LISTEN]
    events.append(UserUttered("ask_hours"))
    prediction = policy.predict_action_probabilities(events, domain)
    assert best(policy, events, domain) == ("order_form", 1.0) and prediction.is_no_user_prediction


def test_rule_for_the_active_form_answers_a_rejected_input(make_graph, make_domain):
    policy, domain = train(make_graph, make_domain)
    events = [LISTEN, UserUttered("order"), ActionExecuted("order_form"), ActiveLoop("order_form"), LISTEN]
    events += [UserUttered("ask_hours"), ActionExecutionRejected("order_form")]
    assert best(policy, events, domain) == ("utter_hours", 1.0)
    events.append(ActionExecuted("utter_hours"))
    assert best(policy, events, domain) == ("order_form", 1.0)
    # once the form ran again, it is back on its happy path
    events += [ActionExecuted("order_form"), LISTEN, UserUttered("greet")]
    assert best(policy, events, domain) == ("order_form", 1.0)


def test_general_rule_answers_a_rejected_input_and_the_form_resumes(make_graph, make_domain):
    policy, domain = train(make_graph, make_domain)
    events = [LISTEN, UserUttered("order"), ActionExecuted("order_form"), ActiveLoop("order_form"), LISTEN]
    events += [UserUttered("greet"), ActionExecutionRejected("order_form")]
    assert best(policy, events, domain) == ("utter_hi", 1.0)
    events.append(ActionExecuted("utter_hi"))
    # the greet rule ends by listening; inside the form the form takes over instead
    prediction = policy.predict_action_probabilities(events, domain)
    assert best(policy, events, domain) == ("order_form", 1.0)
    assert not prediction.is_no_user_prediction and prediction.optional_events == []


def test_form_predicted_by_a_rule_after_user_input_is_told_it_was_interrupted(make_graph, make_domain):
    rules = RULES + """
  - rule: thanks resume the order
    condition:
      - active_loop: order_form
    steps:
      - intent: thank
      - action: order_form
      - active_loop: order_form
"""
    policy, domain = train(make_graph, make_domain, rules=rules)
    events = [LISTEN, UserUttered("order"), ActionExecuted("order_form"), ActiveLoop("order_form"), LISTEN]
    events += [UserUttered("thank"), ActionExecutionRejected("order_form")]
    prediction = policy.predict_action_probabilities(events, domain)
    assert best(policy, events, domain) == ("order_form", 1.0)
    assert prediction.optional_events == [LoopInterrupted(True)]


def test_story_where_the_form_does_not_resume_stops_the_form_being_predicted(make_graph, make_domain):
    stories = """
stories:
  - story: greeting ends the order
    steps:
      - intent: order
      - action: order_form
      - active_loop: order_form
      - intent: greet
      - action: utter_hi
      - action: action_deactivate_loop
      - active_loop: null
"""
    policy, domain = train(make_graph, make_domain, stories=stories)
    events = [LISTEN, UserUttered("order"), ActionExecuted("order_form"), ActiveLoop("order_form"), LISTEN]
    events += [UserUttered("greet"), ActionExecutionRejected("order_form"), ActionExecuted("utter_hi")]
    assert best(policy, events, domain) == ("action_default_fallback", 0.3)


def test_nlu_fallback_rule_and_core_fallback(make_graph, make_domain):
    policy, domain = train(make_graph, make_domain)
    assert best(policy, [ActionExecuted("utter_bye"), LISTEN, UserUttered("nlu_fallback")], domain) == (
        "utter_rephrase",
        1.0,
    )
    unknown = [ActionExecuted("utter_bye"), LISTEN, UserUttered("chitchat")]
    assert best(policy, unknown, domain) == ("action_default_fallback", 0.3)
    quiet, _ = train(make_graph, make_domain, enable_fallback_prediction=False, core_fallback_threshold=0.4)
    assert quiet.predict_action_probabilities(unknown, domain).max_confidence == 0.0
    custom, _ = train(make_graph, make_domain, core_fallback_action_name="utter_rephrase", core_fallback_threshold=0.4)
    assert best(custom, unknown, domain) == ("utter_rephrase", 0.4)


def test_default_intents_trigger_default_actions(make_graph, make_domain):
    policy, domain = train(make_graph, make_domain)
    assert best(policy, [LISTEN, UserUttered("restart")], domain) == ("action_restart", 1.0)
    assert best(policy, [LISTEN, UserUttered("back")], domain) == ("action_back", 1.0)


def test_contradicting_rules_raise_naming_both(make_graph, make_domain):
    rules = RULES + """
  - rule: greet differently
    steps:
      - intent: greet
      - action: utter_bye
"""
    with pytest.raises(InvalidRule) as caught:
        train(make_graph, make_domain, rules=rules)
    assert isinstance(caught.value, TrainkitError)
    assert "'greet'" in str(caught.value) and "'greet differently'" in str(caught.value)


def test_story_contradicting_a_rule_raises(make_graph, make_domain):
    stories = """
stories:
  - story: greeting continues without waiting
    steps:
      - intent: greet
      - action: utter_hi
      - action: utter_hours
"""
    with pytest.raises(InvalidRule, match="wait_for_user_input") as caught:
        train(make_graph, make_domain, stories=stories)
    assert "'greeting continues without waiting'" in str(caught.value)
    policy, _ = train(make_graph, make_domain, stories=stories, check_for_contradictions=False)
    assert policy.rules


def test_rules_with_two_user_turns_are_restricted(make_graph, make_domain):
    rules = """
rules:
  - rule: too long
    steps:
      - intent: greet
      - action: utter_hi
      - intent: bye
      - action: utter_bye
"""
    with pytest.raises(InvalidRule, match="more than 1 user message"):
        train(make_graph, make_domain, rules=rules)
    policy, domain = train(make_graph, make_domain, rules=rules, restrict_rules=False)
    assert policy.rules


def test_train_and_load_round_trip(tmp_path, make_graph, make_domain, policy_inputs):
    domain = make_domain(DOMAIN)
    trackers = generate_trackers(make_graph(RULES), domain, {"augmentation_factor": 0})
    policy = RulePolicy(dict(CONFIG))
    out = ArtifactWriter(tmp_path / "rules")
    policy.train(policy_inputs(trackers, domain), out)
    loaded = RulePolicy.load(policy.config, Artifact(out.path))
    cases = [
        [LISTEN, UserUttered("greet")],
        [SlotSet("vip", True), ActionExecuted("utter_bye"), LISTEN, UserUttered("greet")],
        [LISTEN, UserUttered("order"), ActionExecuted("order_form"), ActiveLoop("order_form")],
        [ActionExecuted("utter_bye"), LISTEN, UserUttered("chitchat")],
    ]
    for events in cases:
        assert loaded.predict_action_probabilities(events, domain) == policy.predict_action_probabilities(events, domain)


INITIAL_VALUE_DOMAIN = """
intents: [greet, bye]
slots:
  returning_customer:
    type: bool
    initial_value: false
    mappings: [{type: custom}]
responses:
  utter_hi: [{text: hi}]
  utter_welcome_new: [{text: welcome}]
  utter_bye: [{text: bye}]
"""

INITIAL_VALUE_RULES = """
rules:
  - rule: welcome at the start
    conversation_start: true
    steps:
      - intent: greet
      - action: utter_welcome_new
  - rule: greet later
    steps:
      - intent: greet
      - action: utter_hi
stories:
  - story: greet, then leave
    steps:
      - intent: greet
      - action: utter_welcome_new
      - intent: bye
      - action: utter_bye
"""


@pytest.mark.parametrize("check", [True, False])
def test_conversation_start_rule_fires_with_initial_slot_values(make_graph, make_domain, check):
    domain = make_domain(INITIAL_VALUE_DOMAIN)
    trackers = generate_trackers(make_graph(INITIAL_VALUE_RULES), domain, {"augmentation_factor": 0})
    policy = RulePolicy({**CONFIG, "check_for_contradictions": check}).fit(trackers, domain)
    assert best(policy, [LISTEN, UserUttered("greet")], domain) == ("utter_welcome_new", 1.0)
    later = [LISTEN, UserUttered("bye"), ActionExecuted("utter_bye"), LISTEN, UserUttered("greet")]
    assert best(policy, later, domain) == ("utter_hi", 1.0)


NAME_DOMAIN = """
intents: [greet]
entities: [name]
slots:
  name: {type: text, mappings: [{type: from_entity, entity: name}]}
responses:
  utter_ask_name: [{text: who are you?}]
  utter_hi_name: [{text: "hi {name}"}]
"""

UNSET_SLOT_IN_STEPS = """
rules:
  - rule: ask for the name when nobody said it
    steps:
      - intent: greet
      - slot_was_set:
          - name: null
      - action: utter_ask_name
stories:
  - story: greeting with a name
    steps:
      - intent: greet
        entities:
          - name: Ann
      - slot_was_set:
          - name: Ann
      - action: utter_hi_name
"""


def test_null_slot_in_rule_steps_means_must_not_be_set(make_graph, make_domain):
    domain = make_domain(NAME_DOMAIN)
    trackers = generate_trackers(make_graph(UNSET_SLOT_IN_STEPS), domain, {"augmentation_factor": 0})
    policy = RulePolicy(dict(CONFIG)).fit(trackers, domain)
    assert best(policy, [LISTEN, UserUttered("greet")], domain) == ("utter_ask_name", 1.0)
    named = [LISTEN, UserUttered("greet"), SlotSet("name", "Ann")]
    assert best(policy, named, domain) == ("action_default_fallback", 0.3)


def test_loaded_model_events_as_dicts_reach_the_rejection(make_graph, make_domain):
    policy, domain = train(make_graph, make_domain)
    events = [LISTEN, UserUttered("order"), ActionExecuted("order_form"), ActiveLoop("order_form"), LISTEN,
              UserUttered("ask_hours")]
    as_dicts = [event_from_dict(e.as_dict()) for e in events] + [event_from_dict(
        {"event": "action_execution_rejected", "name": "order_form"})]
    assert best(policy, as_dicts, domain) == ("utter_hours", 1.0)
