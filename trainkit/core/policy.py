"""What every dialogue policy shares: its prediction record and how it reads its inputs.

A policy trains from the `trackers` and `domain` artifacts and predicts from a plain
list of events plus the domain, so a loaded model needs nothing but the artifacts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainkit.core.trackers import TrainingTracker, trackers_from_json
from trainkit.data.domain import Domain
from trainkit.data.events import Event
from trainkit.engine.artifact import Artifact
from trainkit.engine.component import POLICY, Component, Inputs
from trainkit.errors import TrainkitError


@dataclass
class PolicyPrediction:
    """One policy's opinion on the next action.

    `probabilities` follow `domain.action_names_or_texts`. A "no user" prediction (a form
    continuing its happy path) and an end-to-end prediction outrank the others in the
    ensemble regardless of confidence, as in Rasa.
    """

    probabilities: list[float]
    policy_name: str
    policy_priority: int
    is_end_to_end_prediction: bool = False
    is_no_user_prediction: bool = False
    diagnostic: dict[str, Any] = field(default_factory=dict)
    # Events to apply along with the predicted action (RulePolicy's LoopInterrupted).
    optional_events: list[Event] = field(default_factory=list)

    @property
    def max_confidence(self) -> float:
        """The highest probability (0 when the policy has no opinion)."""
        return max(self.probabilities, default=0.0)

    @property
    def best_index(self) -> int:
        """Index of the most probable action (the first one on ties)."""
        return int(np.argmax(self.probabilities)) if self.probabilities else -1


def read_trackers(inputs: Inputs) -> list[TrainingTracker]:
    """The training trackers of a policy's `trackers` input."""
    artifact = inputs["trackers"]
    assert not isinstance(artifact, list)
    return trackers_from_json(artifact.json("trackers.json"))


def read_domain(inputs: Inputs) -> Domain:
    """The core domain of a policy's `domain` input."""
    artifact = inputs["domain"]
    assert not isinstance(artifact, list)
    return Domain.from_dict(artifact.json("domain.json"))


class Policy(Component):
    """Base class of the dialogue policies."""

    roles = frozenset({POLICY})
    trainable = True
    # Whether the policy sees `action_unlikely_intent` in the conversation. As in Rasa,
    # only the policy that predicts it does; for the others the warning is not a turn of
    # the conversation, so a story goes on as if it had not been raised.
    reads_unlikely_intent: bool = False

    @property
    def policy_priority(self) -> int:
        """The configured priority (Rasa lets `priority` be overridden per policy)."""
        return int(self.config.get("priority", self.priority))

    def predict_action_probabilities(self, events: list[Event], domain: Domain) -> PolicyPrediction:
        """Score every action of the domain for the conversation so far."""
        raise NotImplementedError

    def prediction(
        self,
        domain: Domain,
        scores: dict[str, float] | np.ndarray | None = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        """A PolicyPrediction from action scores (a name->score map or a full vector)."""
        actions = domain.action_names_or_texts
        if isinstance(scores, np.ndarray):
            probabilities = [float(x) for x in scores]
        else:
            probabilities = [0.0] * len(actions)
            for name, score in (scores or {}).items():
                if name not in actions:
                    raise TrainkitError(
                        f"{self.name} predicted '{name}', which is not an action of the domain"
                    )
                probabilities[actions.index(name)] = float(score)
        return PolicyPrediction(probabilities, self.name, self.policy_priority, **kwargs)

    @classmethod
    def load(cls, config: dict[str, Any], model: Artifact | None) -> Component:
        """Rebuild the trained policy; subclasses read their artifact files."""
        return cls(config)
