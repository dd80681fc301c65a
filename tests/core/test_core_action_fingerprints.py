"""Action fingerprints and the incomplete-rule check RulePolicy builds on them."""

from __future__ import annotations

import pytest

from trainkit.core.action_fingerprints import ActionFingerprint, create_action_fingerprints
from trainkit.core.rule_policy import InvalidRule, RulePolicy
from trainkit.core.trackers import generate_trackers

DOMAIN = """
intents: [greet, check_balance, inform]
entities: [account]
slots:
  balance_known: {type: bool, mappings: [{type: custom}]}
  account: {type: text, mappings: [{type: from_entity, entity: account}]}
  note: {type: text, influence_conversation: false, mappings: [{type: custom}]}
forms:
  balance_form:
    required_slots: [account]
responses:
  utter_hi: [{text: hi}]
  utter_balance: [{text: here}]
actions: [action_check_balance]
"""

COMPLETE_RULES = """
rules:
  - rule: check the balance
    steps:
      - intent: check_balance
      - action: action_check_balance
      - slot_was_set:
          - balance_known: true
          - note: checked
      - action: utter_balance
  - rule: ask for the account
    steps:
      - intent: inform
        entities:
          - account: savings
      - action: balance_form
      - active_loop: balance_form
"""


def trackers(make_graph, make_domain, text):
    domain = make_domain(DOMAIN)
    return generate_trackers(make_graph(text), domain, {"augmentation_factor": 0}), domain


def test_fingerprints_record_featurized_slots_and_loops_after_each_action(make_graph, make_domain):
    found, domain = trackers(make_graph, make_domain, COMPLETE_RULES)
    fingerprints = create_action_fingerprints(found, domain)
    # `note` does not influence the conversation; the account entity's slot belongs to the user turn
    assert fingerprints == {
        "action_check_balance": ActionFingerprint(slots=("balance_known",)),
        "balance_form": ActionFingerprint(active_loop=("balance_form",)),
    }
    assert ActionFingerprint.from_dict(fingerprints["balance_form"].as_dict()) == fingerprints["balance_form"]


def test_rule_leaving_out_a_slot_its_action_sets_elsewhere_is_incomplete(make_graph, make_domain):
    incomplete = COMPLETE_RULES + """
  - rule: balance after greeting
    steps:
      - intent: greet
      - action: action_check_balance
      - action: utter_hi
"""
    found, domain = trackers(make_graph, make_domain, incomplete)
    with pytest.raises(InvalidRule) as caught:
        RulePolicy(dict(RulePolicy.defaults)).fit(found, domain)
    message = str(caught.value)
    assert "Incomplete rules" in message and "'balance after greeting'" in message
    assert "'action_check_balance'" in message and "'balance_known'" in message
    assert "wait_for_user_input: false" in message


def test_rule_leaving_out_the_loop_a_form_activates_is_incomplete(make_graph, make_domain):
    incomplete = COMPLETE_RULES + """
  - rule: form on greeting
    steps:
      - intent: greet
      - action: balance_form
      - action: utter_hi
"""
    found, domain = trackers(make_graph, make_domain, incomplete)
    with pytest.raises(InvalidRule, match="'form on greeting'.*'balance_form'.*active_loop"):
        RulePolicy(dict(RulePolicy.defaults)).fit(found, domain)


def test_rule_that_stops_after_the_action_is_complete(make_graph, make_domain):
    ends_open = COMPLETE_RULES + """
  - rule: balance after greeting, then anything
    steps:
      - intent: greet
      - action: action_check_balance
    wait_for_user_input: false
"""
    found, domain = trackers(make_graph, make_domain, ends_open)
    policy = RulePolicy(dict(RulePolicy.defaults)).fit(found, domain)
    assert policy.action_fingerprints["action_check_balance"].slots == ("balance_known",)
