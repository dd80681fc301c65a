"""MemoizationPolicy and AugmentedMemoizationPolicy: exact recall of training histories.

The lookup maps the last `max_history` states to the action the stories took there.
A history that led to different actions in different stories is ambiguous and is not
memorized at all, so the policy never guesses: it predicts with confidence 1 or not at
all. Augmented trackers are skipped, as in Rasa: glued stories teach generalisation,
which is the neural policy's job. Slots and loops that only rules mention are left out
of the states it looks up (see `rule_only`), since no story could have memorized them.
"""

from __future__ import annotations

from typing import Any

from trainkit.core.featurization import (
    DomainView,
    slice_history,
    state_key,
    states_for_events,
    training_examples,
)
from trainkit.core.policy import Policy, PolicyPrediction, read_domain, read_trackers
from trainkit.core.rule_only import RuleOnlyData, find_rule_only_data
from trainkit.core.tracker import DialogueStateTracker
from trainkit.data.domain import Domain
from trainkit.data.events import ActionExecuted, Event, UserUttered
from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.engine.component import Component, Inputs, register
from trainkit.engine.options import HISTORY, PRIORITY, Option

LOOKUP_FILE = "memorized_turns.json"


@register
class MemoizationPolicy(Policy):
    """Predicts the action a training story took after exactly the same recent history."""

    name = "MemoizationPolicy"
    version = "2"
    priority = 3
    defaults = {"max_history": Option(5, HISTORY), "priority": Option(3, PRIORITY)}
    unsupported_options = frozenset({"enable_feature_string_compression", "use_nlu_confidence_as_score"})

    def __init__(
        self, config: dict[str, Any], lookup: dict[str, str] | None = None, rule_only: RuleOnlyData | None = None
    ) -> None:
        super().__init__(config)
        self.lookup: dict[str, str] = dict(lookup or {})
        self.rule_only = rule_only or RuleOnlyData()

    @property
    def max_history(self) -> int | None:
        """States per key; None memorizes whole conversations."""
        value = self.config.get("max_history")
        return None if value is None else int(value)

    def fit(self, trackers: list, domain: Domain) -> MemoizationPolicy:
        """Build the lookup from non-augmented story trackers."""
        lookup: dict[str, str] = {}
        ambiguous: set[str] = set()
        view = DomainView(domain)
        for tracker in trackers:
            if tracker.is_rule or tracker.is_augmented:
                continue
            for example in training_examples(
                tracker.events, domain, self.max_history, tracker.unpredictable, view=view
            ):
                key = example.key
                if key in ambiguous:
                    continue
                if key in lookup and lookup[key] != example.action:
                    del lookup[key]
                    ambiguous.add(key)
                else:
                    lookup[key] = example.action
        self.lookup = dict(sorted(lookup.items()))
        self.rule_only = find_rule_only_data(trackers, domain)
        return self

    def train(self, inputs: Inputs, out: ArtifactWriter) -> None:
        """Memorize the training stories and persist the lookup."""
        self.fit(read_trackers(inputs), read_domain(inputs))
        out.json(
            LOOKUP_FILE,
            {"lookup": self.lookup, "max_history": self.max_history, "rule_only_data": self.rule_only.as_dict()},
        )

    @classmethod
    def load(cls, config: dict[str, Any], model: Artifact | None) -> Component:
        """Rebuild from the persisted lookup."""
        if model is None:
            return cls(config)
        data = model.json(LOOKUP_FILE)
        return cls(config, data["lookup"], RuleOnlyData.from_dict(data.get("rule_only_data")))

    def _states(self, events: list[Event], domain: Domain) -> list:
        """The states the lookup is keyed by: rule-only features removed."""
        states, _ = states_for_events(events, domain)
        return self.rule_only.strip(states)

    def recall(self, events: list[Event], domain: Domain) -> str | None:
        """The memorized action for the current history, if any."""
        return self.lookup.get(state_key(slice_history(self._states(events, domain), self.max_history)))

    def predict_action_probabilities(self, events: list[Event], domain: Domain) -> PolicyPrediction:
        """Confidence 1 for the memorized action, all zeros when nothing matches."""
        action = self.recall(events, domain)
        if action is None:
            return self.prediction(domain)
        return self.prediction(domain, {action: 1.0}, diagnostic={"memorized": action})


@register
class AugmentedMemoizationPolicy(MemoizationPolicy):
    """Memoization that also tries forgetting the start of the conversation.

    When the full recent history is unknown, it drops leading events up to successive
    actions (slots set in the dropped part are forgotten too) and looks again, but never
    past the latest user message, which the next action must answer.
    """

    name = "AugmentedMemoizationPolicy"

    def recall(self, events: list[Event], domain: Domain) -> str | None:
        """Exact recall first, then recall with ever shorter pasts."""
        found = super().recall(events, domain)
        if found is not None:
            return found
        applied = DialogueStateTracker(domain, events).applied_events
        last_user = max((i for i, e in enumerate(applied) if isinstance(e, UserUttered)), default=len(applied))
        tried = {state_key(slice_history(self._states(applied, domain), self.max_history))}
        for start, event in enumerate(applied):
            if start == 0 or not isinstance(event, ActionExecuted) or start > last_user:
                continue
            key = state_key(slice_history(self._states(applied[start:], domain), self.max_history))
            if key in tried:
                continue
            tried.add(key)
            if key in self.lookup:
                return self.lookup[key]
        return None
