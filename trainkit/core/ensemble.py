"""Choosing the next action from every policy's prediction (Rasa 3.6's default ensemble).

The order of precedence: a "no user" prediction (a form on its happy path) beats
everything; otherwise end-to-end predictions beat intent-based ones; among the rest the
highest confidence wins and the policy priority breaks ties. On a complete tie the
policy listed first in config.yml wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from trainkit.core.policy import Policy, PolicyPrediction
from trainkit.data.domain import Domain
from trainkit.data.events import ACTION_UNLIKELY_INTENT, ActionExecuted, Event
from trainkit.engine.artifact import Artifact
from trainkit.engine.component import get_component
from trainkit.errors import TrainkitError


@dataclass
class EnsemblePrediction:
    """The action chosen for the next turn and the prediction it came from."""

    action: str
    confidence: float
    policy_name: str
    prediction: PolicyPrediction


def best_prediction(predictions: Sequence[PolicyPrediction]) -> PolicyPrediction:
    """The winning prediction (see the module docstring for the order)."""
    if not predictions:
        raise TrainkitError("no policy predictions to choose from")
    no_user = any(p.is_no_user_prediction for p in predictions)
    end_to_end = any(p.is_end_to_end_prediction for p in predictions)
    best: PolicyPrediction | None = None
    best_score = (-1.0, float("-inf"))
    for prediction in predictions:
        if prediction.is_no_user_prediction != no_user:
            continue
        if not no_user and prediction.is_end_to_end_prediction != end_to_end:
            continue
        score = (prediction.max_confidence, float(prediction.policy_priority))
        if score > best_score:
            best, best_score = prediction, score
    assert best is not None
    return best


def combine_predictions(predictions: Sequence[PolicyPrediction], domain: Domain) -> EnsemblePrediction:
    """The chosen action name, its confidence and the policy that predicted it."""
    winner = best_prediction(predictions)
    actions = domain.action_names_or_texts
    index = winner.best_index
    if index < 0 or index >= len(actions):
        raise TrainkitError(f"{winner.policy_name} returned {len(winner.probabilities)} scores for {len(actions)} actions")
    return EnsemblePrediction(actions[index], winner.max_confidence, winner.policy_name, winner)


class PolicyEnsemble:
    """The trained dialogue policies of a model, ready to pick the next action."""

    def __init__(self, domain: Domain, policies: Sequence[Policy]) -> None:
        self.domain = domain
        self.policies = list(policies)

    @classmethod
    def from_artifacts(
        cls, domain: Domain, items: Sequence[tuple[str, dict[str, Any], Artifact | None]]
    ) -> PolicyEnsemble:
        """Load policies from (component name, merged config, artifact) in config order."""
        policies = []
        for component, config, artifact in items:
            policy = get_component(component).load(config, artifact)
            if not isinstance(policy, Policy):
                raise TrainkitError(f"'{component}' is not a dialogue policy")
            policies.append(policy)
        return cls(domain, policies)

    def predict(self, events: list[Event]) -> list[PolicyPrediction]:
        """Every policy's prediction, in config order (`action_unlikely_intent` only
        for the policies that read it)."""
        without = [e for e in events if not (isinstance(e, ActionExecuted) and e.action_name == ACTION_UNLIKELY_INTENT)]
        return [p.predict_action_probabilities(list(events if p.reads_unlikely_intent else without), self.domain)
                for p in self.policies]

    def predict_next_action(self, events: list[Event], exclude: str | None = None) -> EnsemblePrediction:
        """The action the assistant takes next after `events`.

        `exclude` names an action that just refused to run (Rasa's ensemble drops the
        rejected action from every prediction that is not end-to-end, so the assistant
        does something else instead of asking it again).
        """
        predictions = self.predict(events)
        if exclude is not None and exclude in self.domain.action_names_or_texts:
            index = self.domain.action_names_or_texts.index(exclude)
            predictions = [_without(p, index) for p in predictions]
        return combine_predictions(predictions, self.domain)


def _without(prediction: PolicyPrediction, index: int) -> PolicyPrediction:
    if prediction.is_end_to_end_prediction or index >= len(prediction.probabilities):
        return prediction
    probabilities = list(prediction.probabilities)
    probabilities[index] = 0.0
    return replace(prediction, probabilities=probabilities)
