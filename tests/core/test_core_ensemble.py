"""Choosing among policy predictions, and the placeholder UnexpecTEDIntentPolicy."""

from __future__ import annotations

import warnings

import pytest

from trainkit.core.ensemble import best_prediction, combine_predictions
from trainkit.core.policy import PolicyPrediction
from trainkit.core.unexpected_intent import UnexpecTEDIntentPolicy
from trainkit.data.events import ActionExecuted
from trainkit.engine.artifact import ArtifactWriter
from trainkit.engine.component import POLICY, component_config, get_component
from trainkit.errors import TrainkitError

DOMAIN = """
intents: [greet]
responses:
  utter_a: [{text: a}]
  utter_b: [{text: b}]
"""


def scores(domain, action, confidence):
    out = [0.0] * len(domain.action_names_or_texts)
    out[domain.action_names_or_texts.index(action)] = confidence
    return out


def prediction(domain, name, priority, action, confidence, **flags):
    return PolicyPrediction(scores(domain, action, confidence), name, priority, **flags)


def test_higher_confidence_wins(make_domain):
    domain = make_domain(DOMAIN)
    chosen = combine_predictions(
        [prediction(domain, "Rule", 4, "utter_a", 0.3), prediction(domain, "TED", 1, "utter_b", 0.8)], domain
    )
    assert (chosen.action, chosen.confidence, chosen.policy_name) == ("utter_b", 0.8, "TED")


def test_priority_breaks_confidence_ties(make_domain):
    domain = make_domain(DOMAIN)
    chosen = combine_predictions(
        [prediction(domain, "Memo", 3, "utter_a", 1.0), prediction(domain, "Rule", 4, "utter_b", 1.0)], domain
    )
    assert chosen.policy_name == "Rule" and chosen.action == "utter_b"


def test_end_to_end_beats_intent_based_predictions(make_domain):
    domain = make_domain(DOMAIN)
    chosen = best_prediction(
        [
            prediction(domain, "Rule", 4, "utter_a", 1.0),
            prediction(domain, "TED", 1, "utter_b", 0.4, is_end_to_end_prediction=True),
        ]
    )
    assert chosen.policy_name == "TED"


def test_no_user_prediction_beats_everything(make_domain):
    domain = make_domain(DOMAIN)
    chosen = best_prediction(
        [
            prediction(domain, "TED", 1, "utter_b", 0.9, is_end_to_end_prediction=True),
            prediction(domain, "Memo", 3, "utter_a", 1.0),
            prediction(domain, "Rule", 4, "action_listen", 0.5, is_no_user_prediction=True),
        ]
    )
    assert chosen.policy_name == "Rule"


def test_complete_tie_keeps_the_first_policy(make_domain):
    domain = make_domain(DOMAIN)
    first = prediction(domain, "A", 3, "utter_a", 1.0)
    assert best_prediction([first, prediction(domain, "B", 3, "utter_b", 1.0)]) is first
    with pytest.raises(TrainkitError):
        best_prediction([])


def test_unexpected_intent_policy_is_accepted_but_skipped_with_one_warning(tmp_path, make_domain):
    cls = get_component("UnexpecTEDIntentPolicy")
    assert POLICY in cls.roles and cls.trainable and cls.priority == 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = component_config(cls, {"name": "UnexpecTEDIntentPolicy", "epochs": 3})
        policy = cls(config)
        cls(config)  # constructing it again (as the recipe and the runner do) says nothing more
    assert len(caught) == 1 and "not supported" in str(caught[0].message)
    assert isinstance(policy, UnexpecTEDIntentPolicy)
    out = ArtifactWriter(tmp_path / "marker")
    policy.train({}, out)
    assert [p.name for p in out.path.iterdir()] == ["unexpected_intent_policy.json"]
    domain = make_domain(DOMAIN)
    result = policy.predict_action_probabilities([ActionExecuted("action_listen")], domain)
    assert result.max_confidence == 0.0 and len(result.probabilities) == len(domain.action_names_or_texts)
