"""TEDPolicy: learns stories, generalises, is deterministic, persists exactly."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest

from trainkit.core.ted import TEDPolicy
from trainkit.core.trackers import generate_trackers
from trainkit.data.events import ActionExecuted, SlotSet, UserUttered
from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.engine.component import component_config

DOMAIN = """
intents: [greet, ask, thank, bye]
slots:
  vip: {type: bool, mappings: [{type: custom}]}
responses:
  utter_hi: [{text: hi}]
  utter_answer: [{text: a}]
  utter_answer_vip: [{text: a, sir}]
  utter_welcome: [{text: w}]
  utter_bye: [{text: bye}]
"""

STORIES = """
stories:
  - story: greet
    steps:
      - intent: greet
      - action: utter_hi
  - story: ask
    steps:
      - intent: ask
      - action: utter_answer
  - story: ask as vip
    steps:
      - slot_was_set:
          - vip: true
      - intent: ask
      - action: utter_answer_vip
  - story: thank
    steps:
      - intent: thank
      - action: utter_welcome
  - story: bye
    steps:
      - intent: bye
      - action: utter_bye
"""

RESPONSE = {"greet": "utter_hi", "ask": "utter_answer", "thank": "utter_welcome", "bye": "utter_bye"}
LISTEN = ActionExecuted("action_listen")


def config(**overrides):
    merged = dict(TEDPolicy.defaults)
    merged.update(max_history=3, epochs=60, random_seed=1, batch_size=[16, 32])
    merged.update(overrides)
    return merged




def setup(make_graph, make_domain, **overrides):
    domain = make_domain(DOMAIN)
    trackers = generate_trackers(make_graph(STORIES), domain, {"augmentation_factor": 10, "random_seed": 3})
    return TEDPolicy(config(**overrides)).fit(trackers, domain), domain, trackers


def best(policy, events, domain):
    prediction = policy.predict_action_probabilities(events, domain)
    return domain.action_names_or_texts[prediction.best_index]


def test_learns_the_training_stories(make_graph, make_domain):
    policy, domain, trackers = setup(make_graph, make_domain)
    assert policy.losses[-1] < policy.losses[0] / 10
    total = correct = 0
    for tracker in trackers:
        for position, event in enumerate(tracker.events):
            if isinstance(event, ActionExecuted) and position not in tracker.unpredictable:
                total += 1
                correct += best(policy, tracker.events[:position], domain) == event.action_name
    assert correct / total >= 0.95


def test_generalises_to_unseen_conversations(make_graph, make_domain):
    policy, domain, _ = setup(make_graph, make_domain)
    rng = random.Random(0)
    events = []
    total = correct = 0
    for _ in range(30):
        intent = rng.choice(sorted(RESPONSE))
        events += [LISTEN, UserUttered(intent)]
        correct += best(policy, events, domain) == RESPONSE[intent]
        events.append(ActionExecuted(RESPONSE[intent]))
        correct += best(policy, events, domain) == "action_listen"
        total += 2
    assert correct / total >= 0.95
    # the slot changes the answer
    assert best(policy, [SlotSet("vip", True), LISTEN, UserUttered("ask")], domain) == "utter_answer_vip"


def test_probabilities_cover_every_domain_action(make_graph, make_domain):
    policy, domain, _ = setup(make_graph, make_domain, epochs=2)
    prediction = policy.predict_action_probabilities([LISTEN, UserUttered("greet")], domain)
    assert len(prediction.probabilities) == len(domain.action_names_or_texts)
    assert abs(sum(prediction.probabilities) - 1.0) < 1e-5
    assert prediction.policy_priority == 1 and prediction.policy_name == "TEDPolicy"


def test_same_seed_same_weights_other_seed_other_weights(make_graph, make_domain):
    a, _, _ = setup(make_graph, make_domain, epochs=3)
    b, _, _ = setup(make_graph, make_domain, epochs=3)
    c, _, _ = setup(make_graph, make_domain, epochs=3, random_seed=2)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert not np.array_equal(a.params["W0"], c.params["W0"])


def test_train_and_load_give_identical_predictions(tmp_path, make_graph, make_domain, policy_inputs):
    domain = make_domain(DOMAIN)
    trackers = generate_trackers(make_graph(STORIES), domain, {"augmentation_factor": 5})
    policy = TEDPolicy(config(epochs=5))
    out = ArtifactWriter(tmp_path / "ted")
    policy.train(policy_inputs(trackers, domain), out)
    assert not list(tmp_path.glob("ted/*.pkl"))
    loaded = TEDPolicy.load(policy.config, Artifact(out.path))
    for events in ([LISTEN, UserUttered("greet")], [LISTEN, UserUttered("ask")], [LISTEN]):
        assert loaded.predict_action_probabilities(events, domain) == policy.predict_action_probabilities(events, domain)


def test_full_history_when_max_history_is_none(make_graph, make_domain):
    policy, domain, _ = setup(make_graph, make_domain, max_history=None, epochs=2)
    assert policy.window > 3


def test_long_histories_enter_the_network_sparse_and_score_as_dense_inputs(make_graph, make_domain):
    policy, domain, trackers = setup(make_graph, make_domain, max_history=None, epochs=2)
    histories = [states for states, _ in policy._examples(trackers, domain)]
    x = policy._inputs(histories)
    assert x.shape == (len(histories), policy.window * policy.encoder.size)
    # a state turns on a few units: the inputs grow with the states, not with the window
    assert x.nnz <= 8 * sum(min(len(h), policy.window) for h in histories)
    p = policy.params
    hidden = np.maximum(x.to_dense().astype(np.float32) @ p["W0"] + p["b0"], 0)
    expected = (hidden @ p["W_embed"] + p["b_embed"]) @ p["action_embeddings"].T
    np.testing.assert_allclose(policy._forward(x)[0], expected, rtol=1e-4, atol=1e-5)


def test_no_stories_gives_an_empty_model(make_domain):
    domain = make_domain(DOMAIN)
    policy = TEDPolicy(config()).fit([], domain)
    assert policy.predict_action_probabilities([LISTEN], domain).max_confidence == 0.0


def test_transformer_options_are_reported_unsupported():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        merged = component_config(TEDPolicy, {"name": "TEDPolicy", "number_of_transformer_layers": 2, "epochs": 3})
    assert merged["epochs"] == 3 and "number_of_transformer_layers" not in merged
    assert any("number_of_transformer_layers" in str(w.message) and "not supported" in str(w.message) for w in caught)




def test_balanced_batches_are_rasas_default():
    assert TEDPolicy.defaults["batch_strategy"] == "balanced"


@pytest.mark.parametrize("strategy", ["balanced", "sequence"])
def test_each_epoch_trains_on_the_order_its_batch_strategy_lays_out(monkeypatch, make_graph, make_domain, strategy):
    """Each epoch trains on the order `trainkit.ml.batching` lays out for the examples'
    actions: `balanced` brings rare labels back within an epoch (tests/ml/test_batching.py),
    `sequence` is one shuffled pass."""
    import trainkit.core.ted as ted_module

    orders: list[tuple[np.ndarray, np.ndarray]] = []
    trained: list[np.ndarray] = []
    original_order, original_gradients = ted_module.epoch_order, TEDPolicy._gradients

    def recording_order(n, labels, batch_size, rng, chosen):
        assert chosen == strategy and labels.size == n
        order = original_order(n, labels, batch_size, rng, chosen)
        orders.append((labels, order))
        return order

    def recording_gradients(self, logits, cache, y):
        trained.append(np.asarray(y))
        return original_gradients(self, logits, cache, y)

    monkeypatch.setattr(ted_module, "epoch_order", recording_order)
    monkeypatch.setattr(TEDPolicy, "_gradients", recording_gradients)
    setup(make_graph, make_domain, epochs=3, batch_strategy=strategy)
    assert len(orders) == 3
    expected = np.concatenate([labels[order] for labels, order in orders])
    np.testing.assert_array_equal(np.concatenate(trained), expected)
