"""RulePolicy: fixed behaviour from rules, forms on their happy path, and core fallback.

A rule tracker becomes one rule per action it takes: the states since the rule's `...`
marker (or since the conversation start for `conversation_start` rules) are the
condition, the action is the prediction. Rule states only mention the slots the rule
sets, so every other slot is "don't care"; a `null` in a rule condition means "must not
be set". When several rules match, the most specific one wins.

Prediction order (Rasa 3.6): the default intents (`restart`, `back`, `session_start`)
first, then an active form, then rules, then the fallback action at
`core_fallback_threshold`. trainkit does not run forms, so it cannot see a form reject
the user's message; instead, right after user input, a rule written for the active
form (its condition names the loop) takes over from the form, which is what happens in
Rasa when the form rejects that input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trainkit.core.events import (
    ACTION_LISTEN,
    RULE_SNIPPET_ACTION,
    ActionExecuted,
    Event,
    UserUttered,
)
from trainkit.core.featurization import (
    ACTIVE_LOOP,
    PREVIOUS_ACTION,
    USER,
    DomainView,
    State,
    state_key,
    states_for_events,
    training_examples,
)
from trainkit.core.policy import Policy, PolicyPrediction, read_domain, read_trackers
from trainkit.core.tracker import SHOULD_NOT_BE_SET
from trainkit.core.trackers import TrainingTracker
from trainkit.data.domain import Domain
from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.engine.component import Component, Inputs, register
from trainkit.engine.options import PRIORITY, PROBABILITY, Option
from trainkit.errors import TrainkitError

RULES_FILE = "rules.json"

# Intents every assistant handles the same way.
DEFAULT_ACTION_MAPPINGS = {
    "restart": "action_restart",
    "back": "action_back",
    "session_start": "action_session_start",
}

SOURCE_DEFAULT = "default"
SOURCE_LOOP = "loop"
SOURCE_RULES = "rules"
SOURCE_FALLBACK = "fallback"


class InvalidRule(TrainkitError):
    """Rules that contradict each other or the stories, or that are too long."""


@dataclass
class Rule:
    """A learned rule: condition states (oldest first) and the action they lead to."""

    states: list[State]
    action: str
    names: list[str]

    @property
    def specificity(self) -> tuple[int, int, int]:
        """Longer and more detailed conditions are more specific."""
        entries = sum(len(sub) for state in self.states for sub in state.values())
        key = state_key(self.states)
        return (len(self.states), entries, len(key))

    @property
    def mentions_loop(self) -> str | None:
        """The active loop the rule's last state requires, if any."""
        name = self.states[-1].get(ACTIVE_LOOP, {}).get("name") if self.states else None
        return None if name == SHOULD_NOT_BE_SET else name


def _state_matches(rule_state: State, state: State) -> bool:
    """Every feature the rule names must be present with the same value (or absent for
    "must not be set"); features the rule does not name are ignored."""
    if not rule_state or not state:
        return not rule_state and not state
    for part, rule_sub in rule_state.items():
        sub = state.get(part, {})
        for key, value in rule_sub.items():
            actual = sub.get(key)
            if value == SHOULD_NOT_BE_SET:
                if actual is not None and actual != SHOULD_NOT_BE_SET:
                    return False
            elif actual != value:
                return False
    return True


def rule_applies(rule_states: list[State], states: list[State]) -> bool:
    """Whether the rule's states match the most recent conversation states."""
    if len(rule_states) > len(states):
        return False
    offset = len(states) - len(rule_states)
    return all(_state_matches(r, states[offset + i]) for i, r in enumerate(rule_states))


def _strip_before_snippet(states: list[State]) -> list[State]:
    """States after the last `...` marker: a rule says nothing about what came before."""
    for index in range(len(states) - 1, -1, -1):
        if states[index].get(PREVIOUS_ACTION, {}).get("action_name") == RULE_SNIPPET_ACTION:
            return states[index + 1 :]
    return states


@dataclass
class _Decision:
    action: str | None
    source: str | None = None
    rules: tuple[str, ...] = ()
    no_user: bool = False


@register
class RulePolicy(Policy):
    """Applies rules exactly; never generalises."""

    name = "RulePolicy"
    version = "1"
    priority = 4
    defaults = {
        "core_fallback_threshold": Option(0.3, PROBABILITY),
        "core_fallback_action_name": "action_default_fallback",
        "enable_fallback_prediction": True,
        "restrict_rules": True,
        "check_for_contradictions": True,
        "priority": Option(4, PRIORITY),
    }
    unsupported_options = frozenset({"use_nlu_confidence_as_score", "enable_feature_string_compression"})

    def __init__(self, config: dict[str, Any], rules: list[Rule] | None = None) -> None:
        super().__init__(config)
        self.rules: list[Rule] = list(rules or [])

    # --- training -----------------------------------------------------------------------

    def fit(self, trackers: list[TrainingTracker], domain: Domain) -> RulePolicy:
        """Learn rules from rule trackers and check them against rules and stories."""
        rule_trackers = [t for t in trackers if t.is_rule]
        if self.config.get("restrict_rules", True):
            self._check_rule_restriction(rule_trackers)
        by_key: dict[str, Rule] = {}
        view = DomainView(domain)
        for tracker in rule_trackers:
            for example in training_examples(tracker.events, domain, None, tracker.unpredictable, True, view):
                states = _strip_before_snippet(example.states)
                if not states:
                    continue
                key = state_key(states)
                known = by_key.get(key)
                if known is None:
                    by_key[key] = Rule(states, example.action, [tracker.name])
                elif known.action != example.action:
                    raise InvalidRule(
                        "Contradicting rules found: rule(s) "
                        + ", ".join(f"'{n}'" for n in known.names)
                        + f" predict '{known.action}' but rule '{tracker.name}' predicts "
                        f"'{example.action}' in the same situation. Make the rules' conditions differ."
                    )
                elif tracker.name not in known.names:
                    known.names.append(tracker.name)
        self.rules = [by_key[k] for k in sorted(by_key)]
        if self.config.get("check_for_contradictions", True):
            story_trackers = [t for t in trackers if not t.is_rule and not t.is_augmented]
            self._check_contradictions(rule_trackers + story_trackers, domain)
        return self

    @staticmethod
    def _check_rule_restriction(rule_trackers: list[TrainingTracker]) -> None:
        too_long = sorted(
            {t.name for t in rule_trackers if sum(isinstance(e, UserUttered) for e in t.events) > 1}
        )
        if too_long:
            raise InvalidRule(
                "Found rules " + ", ".join(f"'{n}'" for n in too_long) + " that contain more than "
                "1 user message. Rules are not meant to hardcode a state machine; use stories for "
                "these cases (or set 'restrict_rules: false')."
            )

    def _check_contradictions(self, trackers: list[TrainingTracker], domain: Domain) -> None:
        problems: list[str] = []
        view = DomainView(domain)
        for tracker in trackers:
            states, positions = states_for_events(tracker.events, domain, view=view)
            skip = set(tracker.unpredictable)
            for index, position in enumerate(positions):
                event = tracker.events[position]
                assert isinstance(event, ActionExecuted)
                gold = event.action_name or event.action_text
                previous = states[index].get(PREVIOUS_ACTION, {}).get("action_name")
                if position in skip or gold == RULE_SNIPPET_ACTION or previous == RULE_SNIPPET_ACTION:
                    continue
                decision = self._decide(states[: index + 1])
                if decision.source != SOURCE_RULES or decision.action == gold:
                    continue
                kind = "rule" if tracker.is_rule else "story"
                message = (
                    f"- the prediction of the action '{gold}' in {kind} '{tracker.name}' is "
                    "contradicting with rule(s) " + ", ".join(f"'{n}'" for n in decision.rules)
                    + f", which predict '{decision.action}'."
                )
                if decision.action == ACTION_LISTEN:
                    message += (
                        " Rules end by waiting for the user; add 'wait_for_user_input: false' to "
                        "the rule if the conversation should continue with another action."
                    )
                if message not in problems:
                    problems.append(message)
        if problems:
            raise InvalidRule("Contradicting rules or stories found:\n" + "\n".join(problems))

    def train(self, inputs: Inputs, out: ArtifactWriter) -> None:
        """Learn and persist the rules."""
        self.fit(read_trackers(inputs), read_domain(inputs))
        out.json(
            RULES_FILE,
            {"rules": [{"states": r.states, "action": r.action, "names": r.names} for r in self.rules]},
        )

    @classmethod
    def load(cls, config: dict[str, Any], model: Artifact | None) -> Component:
        """Rebuild from the persisted rules."""
        rules = []
        if model is not None:
            for item in model.json(RULES_FILE)["rules"]:
                rules.append(Rule(item["states"], item["action"], list(item["names"])))
        return cls(config, rules)

    # --- prediction ---------------------------------------------------------------------

    def _best_rule(self, states: list[State]) -> Rule | None:
        matching = [r for r in self.rules if rule_applies(r.states, states)]
        if not matching:
            return None
        return max(matching, key=lambda r: (r.specificity, state_key(r.states)))

    def _decide(self, states: list[State]) -> _Decision:
        current = states[-1] if states else {}
        previous = current.get(PREVIOUS_ACTION, {}).get("action_name")
        intent = current.get(USER, {}).get("intent")
        if previous == ACTION_LISTEN and intent in DEFAULT_ACTION_MAPPINGS:
            return _Decision(DEFAULT_ACTION_MAPPINGS[intent], SOURCE_DEFAULT)
        rule = self._best_rule(states)
        loop = current.get(ACTIVE_LOOP, {}).get("name")
        if loop is not None and loop != SHOULD_NOT_BE_SET:
            if previous == loop:
                return _Decision(ACTION_LISTEN, SOURCE_LOOP, no_user=True)
            unhappy = (
                previous == ACTION_LISTEN
                and rule is not None
                and rule.mentions_loop == loop
                and rule.action != loop
            )
            if not unhappy:
                return _Decision(loop, SOURCE_LOOP, no_user=True)
        if rule is not None:
            return _Decision(rule.action, SOURCE_RULES, tuple(rule.names))
        return _Decision(None)

    def predict_action_probabilities(self, events: list[Event], domain: Domain) -> PolicyPrediction:
        """Probability 1 for the rule's action, else the fallback at its threshold."""
        states, _ = states_for_events(events, domain)
        decision = self._decide(states)
        diagnostic: dict[str, Any] = {"source": decision.source, "rules": list(decision.rules)}
        if decision.action is not None:
            return self.prediction(
                domain, {decision.action: 1.0}, is_no_user_prediction=decision.no_user, diagnostic=diagnostic
            )
        if self.config.get("enable_fallback_prediction", True):
            fallback = str(self.config.get("core_fallback_action_name", "action_default_fallback"))
            threshold = float(self.config.get("core_fallback_threshold", 0.3))
            diagnostic["source"] = SOURCE_FALLBACK
            return self.prediction(domain, {fallback: threshold}, diagnostic=diagnostic)
        return self.prediction(domain, diagnostic=diagnostic)
