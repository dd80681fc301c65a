"""MemoizationPolicy and AugmentedMemoizationPolicy."""

from __future__ import annotations

from trainkit.core.memoization import AugmentedMemoizationPolicy, MemoizationPolicy
from trainkit.core.trackers import generate_trackers
from trainkit.data.events import ActionExecuted, SlotSet, UserUttered
from trainkit.engine.artifact import Artifact, ArtifactWriter

DOMAIN = """
intents: [greet, ask, thank, bye]
slots:
  known: {type: bool, mappings: [{type: custom}]}
responses:
  utter_hi: [{text: hi}]
  utter_answer: [{text: a}]
  utter_other: [{text: b}]
  utter_welcome: [{text: w}]
  utter_bye: [{text: bye}]
"""

STORIES = """
stories:
  - story: greet then ask
    steps:
      - intent: greet
      - action: utter_hi
      - intent: ask
      - action: utter_answer
  - story: ask then thank
    steps:
      - intent: ask
      - action: utter_answer
      - intent: thank
      - action: utter_welcome
  - story: ambiguous one
    steps:
      - intent: bye
      - action: utter_bye
  - story: ambiguous two
    steps:
      - intent: bye
      - action: utter_other
"""

LISTEN = ActionExecuted("action_listen")


def trained(cls, make_graph, make_domain, max_history=5):
    domain = make_domain(DOMAIN)
    trackers = generate_trackers(make_graph(STORIES), domain, {"augmentation_factor": 0})
    return cls({"max_history": max_history, "priority": 3}).fit(trackers, domain), domain


def best(policy, events, domain):
    prediction = policy.predict_action_probabilities(events, domain)
    if prediction.max_confidence == 0:
        return None
    return domain.action_names_or_texts[prediction.best_index], prediction.max_confidence


def test_predicts_memorized_continuations_with_confidence_one(make_graph, make_domain):
    policy, domain = trained(MemoizationPolicy, make_graph, make_domain)
    events = [LISTEN, UserUttered("greet")]
    assert best(policy, events, domain) == ("utter_hi", 1.0)
    events += [ActionExecuted("utter_hi")]
    assert best(policy, events, domain) == ("action_listen", 1.0)
    events += [LISTEN, UserUttered("ask")]
    assert best(policy, events, domain) == ("utter_answer", 1.0)


def test_predicts_nothing_for_unseen_or_ambiguous_histories(make_graph, make_domain):
    policy, domain = trained(MemoizationPolicy, make_graph, make_domain)
    prediction = policy.predict_action_probabilities([LISTEN, UserUttered("thank")], domain)
    assert prediction.max_confidence == 0.0 and len(prediction.probabilities) == len(domain.action_names_or_texts)
    assert best(policy, [LISTEN, UserUttered("bye")], domain) is None  # two stories disagree


def test_history_longer_than_max_history_is_cut(make_graph, make_domain):
    policy, domain = trained(MemoizationPolicy, make_graph, make_domain, max_history=2)
    # With two states the start of "greet then ask" is forgotten, so "ask" after any
    # bot turn and listen is remembered.
    events = [LISTEN, UserUttered("greet"), ActionExecuted("utter_hi"), LISTEN, UserUttered("ask")]
    assert best(policy, events, domain) == ("utter_answer", 1.0)
    assert best(policy, [SlotSet("known", True), LISTEN, UserUttered("greet")], domain) is None


def test_augmented_memoization_forgets_the_start_of_the_conversation(make_graph, make_domain):
    plain, domain = trained(MemoizationPolicy, make_graph, make_domain)
    augmented, _ = trained(AugmentedMemoizationPolicy, make_graph, make_domain)
    # A slot set earlier makes the states unknown to plain memoization.
    events = [SlotSet("known", True), ActionExecuted("utter_welcome"), LISTEN, UserUttered("greet")]
    assert best(plain, events, domain) is None
    assert best(augmented, events, domain) == ("utter_hi", 1.0)


def test_train_persists_a_lookup_that_loads_to_identical_predictions(tmp_path, make_graph, make_domain, policy_inputs):
    domain = make_domain(DOMAIN)
    trackers = generate_trackers(make_graph(STORIES), domain, {"augmentation_factor": 0})
    policy = AugmentedMemoizationPolicy({"max_history": 3, "priority": 3})
    writer = ArtifactWriter(tmp_path / "memo")
    policy.train(policy_inputs(trackers, domain), writer)
    loaded = AugmentedMemoizationPolicy.load(policy.config, Artifact(writer.path))
    cases = ([LISTEN, UserUttered("greet")], [LISTEN, UserUttered("ask")], [LISTEN], [SlotSet("known", True)])
    for events in cases:
        assert loaded.predict_action_probabilities(events, domain) == policy.predict_action_probabilities(events, domain)
