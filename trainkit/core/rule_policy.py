"""RulePolicy: fixed behaviour from rules, forms on their happy path, and core fallback.

A rule tracker becomes one rule per action it takes: the states since the rule's `...`
marker (or since the conversation start for `conversation_start` rules) are the
condition, the action is the prediction. Rule states only mention the slots the rule
sets, so every other slot is "don't care"; a `null` in a rule means "must not be set".
When several rules match, the most specific one wins.

Prediction order (Rasa 3.6): the default intents (`restart`, `back`, `session_start`)
first, then an active form on its happy path, then rules, then the fallback action at
`core_fallback_threshold`. A form leaves its happy path when it rejects the user's input
(`ActionExecutionRejected`): then any rule may answer, and when a rule that does not
mention the form ends by listening, the form is predicted instead and resumes. Stories
and rules teach which situations must not hand back to the form, and in which the form,
predicted right after user input, was interrupted (the "unhappy path" lookup); that
prediction carries a `LoopInterrupted` event so the form does not validate the input.

Training checks the rules against each other and against the stories, replaying them
the way prediction works (a form that the data does not continue is taken to have
rejected the input), and refuses incomplete rules: a rule in which an action does not
set the slots or loops it sets in other rules (see `action_fingerprints`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trainkit.core.action_fingerprints import (
    ActionFingerprint,
    create_action_fingerprints,
    fingerprints_from_json,
    fingerprints_to_json,
)
from trainkit.core.featurization import (
    ACTIVE_LOOP,
    PREVIOUS_ACTION,
    SLOTS,
    DomainView,
    State,
    state_key,
    states_for_events,
    training_examples,
)
from trainkit.core.policy import Policy, PolicyPrediction, read_domain, read_trackers
from trainkit.core.tracker import SHOULD_NOT_BE_SET, DialogueStateTracker
from trainkit.core.trackers import TrainingTracker
from trainkit.data.domain import Domain
from trainkit.data.events import (
    ACTION_LISTEN,
    RULE_SNIPPET_ACTION,
    ActionExecuted,
    ActionExecutionRejected,
    Event,
    LoopInterrupted,
    UserUttered,
)
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

# What the unhappy-path lookup says about a situation inside an active loop.
LOOP_WAS_INTERRUPTED = "loop_was_interrupted"
DO_NOT_PREDICT_LOOP_ACTION = "do_not_predict_loop_action"


class InvalidRule(TrainkitError):
    """Rules that contradict each other or the stories, are incomplete, or too long."""


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
    """Whether the rule's states match the most recent conversation states (Rasa 3.6).

    States are compared from the latest backwards. A state without a previous action is
    a conversation start: a rule's start state matches the conversation's start state
    whatever the slots' initial values are, and nothing else. A rule longer than the
    conversation applies when the part that overlaps matches.
    """
    for back in range(1, min(len(rule_states), len(states)) + 1):
        rule_state, state = rule_states[-back], states[-back]
        rule_start = not rule_state.get(PREVIOUS_ACTION)
        start = not state.get(PREVIOUS_ACTION)
        if rule_start or start:
            if rule_start and start:
                continue
            return False
        if not _state_matches(rule_state, state):
            return False
    return True


def _strip_before_snippet(states: list[State]) -> list[State]:
    """States after the last `...` marker: a rule says nothing about what came before."""
    for index in range(len(states) - 1, -1, -1):
        if states[index].get(PREVIOUS_ACTION, {}).get("action_name") == RULE_SNIPPET_ACTION:
            return states[index + 1 :]
    return states


def _previous_action(state: State) -> str | None:
    return state.get(PREVIOUS_ACTION, {}).get("action_name")


def _active_loop(state: State) -> str | None:
    name = state.get(ACTIVE_LOOP, {}).get("name")
    return None if name == SHOULD_NOT_BE_SET else name


def _unhappy_path_key(states: list[State]) -> list[State]:
    """The last state plus the action before it: what decides whether a form resumes.

    The previous user message is left out, so the key says "after this action, in this
    state" whatever the user said earlier.
    """
    if len(states) == 1 or not states[-2].get(PREVIOUS_ACTION):
        return _strip_before_snippet([states[-1]])
    return _strip_before_snippet([{PREVIOUS_ACTION: states[-2][PREVIOUS_ACTION]}, states[-1]])


@dataclass
class _Decision:
    action: str | None
    source: str | None = None
    rules: tuple[str, ...] = ()
    no_user: bool = False
    interrupted: bool = False


@register
class RulePolicy(Policy):
    """Applies rules exactly; never generalises."""

    name = "RulePolicy"
    version = "2"
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

    def __init__(
        self,
        config: dict[str, Any],
        rules: list[Rule] | None = None,
        unhappy_path: list[tuple[list[State], str]] | None = None,
        action_fingerprints: dict[str, ActionFingerprint] | None = None,
    ) -> None:
        super().__init__(config)
        self.rules: list[Rule] = list(rules or [])
        self.unhappy_path: list[tuple[list[State], str]] = list(unhappy_path or [])
        self.action_fingerprints: dict[str, ActionFingerprint] = dict(action_fingerprints or {})

    @property
    def fallback_action_name(self) -> str:
        """The action predicted (at the fallback threshold) when no rule applies."""
        return str(self.config.get("core_fallback_action_name", "action_default_fallback"))

    # --- training -----------------------------------------------------------------------

    def fit(self, trackers: list[TrainingTracker], domain: Domain) -> RulePolicy:
        """Learn rules from rule trackers and check them against rules and stories."""
        self._check_fallback_action(domain)
        rule_trackers = [t for t in trackers if t.is_rule]
        story_trackers = [t for t in trackers if not t.is_rule and not t.is_augmented]
        if self.config.get("restrict_rules", True):
            self._check_rule_restriction(rule_trackers)
        self._check_for_incomplete_rules(rule_trackers, domain)
        view = DomainView(domain)
        self.rules = self._learn_rules(rule_trackers, domain, view)
        self.unhappy_path = self._learn_unhappy_path(rule_trackers, story_trackers, domain, view)
        self.action_fingerprints = create_action_fingerprints(rule_trackers + story_trackers, domain)
        if self.config.get("check_for_contradictions", True):
            self._check_contradictions(rule_trackers + story_trackers, domain)
        return self

    def _check_fallback_action(self, domain: Domain) -> None:
        if not self.config.get("enable_fallback_prediction", True):
            return
        if self.fallback_action_name not in domain.action_names_or_texts:
            raise InvalidRule(
                f"RulePolicy: core_fallback_action_name '{self.fallback_action_name}' is not an "
                "action of the domain; add it to the domain's actions or responses, or fix its "
                "spelling."
            )

    @staticmethod
    def _learn_rules(rule_trackers: list[TrainingTracker], domain: Domain, view: DomainView) -> list[Rule]:
        by_key: dict[str, Rule] = {}
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
        return [by_key[k] for k in sorted(by_key)]

    @staticmethod
    def _learn_unhappy_path(
        rule_trackers: list[TrainingTracker],
        story_trackers: list[TrainingTracker],
        domain: Domain,
        view: DomainView,
    ) -> list[tuple[list[State], str]]:
        """When a form must resume after an interruption, and when it must not be predicted.

        After user input, a form that the data predicts anyway was interrupted (it resumes
        without validating); after a bot action, an action other than the form means the
        form must not be predicted there.
        """
        lookup: dict[str, tuple[list[State], str]] = {}
        for tracker in [*rule_trackers, *story_trackers]:
            states, positions = states_for_events(tracker.events, domain, tracker.is_rule, view)
            skip = set(tracker.unpredictable)
            for index, position in enumerate(positions):
                event = tracker.events[position]
                assert isinstance(event, ActionExecuted)
                history = states[: index + 1]
                loop = _active_loop(history[-1])
                if position in skip or loop is None or event.action_name == RULE_SNIPPET_ACTION:
                    continue
                key_states = _unhappy_path_key(history)
                if not key_states:
                    continue
                after_user = _previous_action(history[-1]) == ACTION_LISTEN
                action = event.action_name or event.action_text
                if after_user and action == loop:
                    lookup[state_key(key_states)] = (key_states, LOOP_WAS_INTERRUPTED)
                elif not after_user and action != loop:
                    lookup[state_key(key_states)] = (key_states, DO_NOT_PREDICT_LOOP_ACTION)
        return [lookup[k] for k in sorted(lookup)]

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

    @staticmethod
    def _check_for_incomplete_rules(rule_trackers: list[TrainingTracker], domain: Domain) -> None:
        """Refuse rules in which an action leaves out slots or loops it sets in other rules.

        At prediction time the action's slots are set after it runs, so a rule that does
        not list them describes a state that never happens and silently never applies.
        """
        fingerprints = create_action_fingerprints(rule_trackers, domain)
        if not fingerprints:
            return
        problems: list[str] = []
        view = DomainView(domain)
        for tracker in rule_trackers:
            states, _ = states_for_events(tracker.events, domain, view=view)
            following = [_previous_action(state) for state in states[1:]] + [ACTION_LISTEN]
            for state, next_action in zip(states, following, strict=True):
                action = _previous_action(state)
                fingerprint = fingerprints.get(action or "")
                if action is None or fingerprint is None or RULE_SNIPPET_ACTION in (action, next_action):
                    continue
                missing = sorted(set(fingerprint.slots) - set(state.get(SLOTS, {})))
                if missing:
                    problems.append(
                        f"- in rule '{tracker.name}', the action '{action}' sets none of the slots "
                        + ", ".join(f"'{m}'" for m in missing)
                        + " that it sets in other rules. Add them to this rule (use 'null' for "
                        "a slot that must stay unset), or, if the conversation may continue "
                        "differently after this action, end the rule here with "
                        "'wait_for_user_input: false'."
                    )
                loops = set(fingerprint.active_loop)
                if loops and state.get(ACTIVE_LOOP, {}).get("name") not in loops:
                    written = sorted("null" if loop in (None, SHOULD_NOT_BE_SET) else loop for loop in loops)
                    problems.append(
                        f"- in rule '{tracker.name}', the form '{action}' does not set the "
                        "'active_loop' it sets in other rules (" + ", ".join(f"'{w}'" for w in written)
                        + "). Add the 'active_loop' step, or end the rule after the form with "
                        "'wait_for_user_input: false'."
                    )
        if problems:
            raise InvalidRule("Incomplete rules found:\n" + "\n".join(dict.fromkeys(problems)))

    def _check_contradictions(self, trackers: list[TrainingTracker], domain: Domain) -> None:
        problems: list[str] = []
        view = DomainView(domain)
        for tracker in trackers:
            running: list[Event] = []
            unpredictable = True  # a tracker's first action
            skip = set(tracker.unpredictable)
            for position, event in enumerate(tracker.events):
                if not isinstance(event, ActionExecuted):
                    running.append(event)
                    continue
                gold = event.action_name or event.action_text
                if gold == RULE_SNIPPET_ACTION or unpredictable or position in skip:
                    unpredictable = gold == RULE_SNIPPET_ACTION
                    running.append(event)
                    continue
                decision = self.decide_with_rejection(running, domain, str(gold), view)
                running.append(event)
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
        """Learn and persist the rules, the unhappy-path lookup and the action fingerprints."""
        self.fit(read_trackers(inputs), read_domain(inputs))
        out.json(
            RULES_FILE,
            {
                "rules": [{"states": r.states, "action": r.action, "names": r.names} for r in self.rules],
                "unhappy_path": [{"states": states, "value": value} for states, value in self.unhappy_path],
                "action_fingerprints": fingerprints_to_json(self.action_fingerprints),
            },
        )

    @classmethod
    def load(cls, config: dict[str, Any], model: Artifact | None) -> Component:
        """Rebuild from the persisted rules."""
        if model is None:
            return cls(config)
        data = model.json(RULES_FILE)
        rules = [Rule(item["states"], item["action"], list(item["names"])) for item in data["rules"]]
        unhappy = [(item["states"], item["value"]) for item in data.get("unhappy_path", [])]
        return cls(config, rules, unhappy, fingerprints_from_json(data.get("action_fingerprints", {})))

    # --- prediction ---------------------------------------------------------------------

    def _best_rule(self, states: list[State]) -> Rule | None:
        matching = [r for r in self.rules if rule_applies(r.states, states)]
        if not matching:
            return None
        return max(matching, key=lambda r: (r.specificity, state_key(r.states)))

    def _decide(self, tracker: DialogueStateTracker, states: list[State]) -> _Decision:
        latest = tracker.latest_action.action_name if tracker.latest_action is not None else None
        message = tracker.latest_message
        if latest == ACTION_LISTEN and message is not None and message.intent in DEFAULT_ACTION_MAPPINGS:
            return _Decision(DEFAULT_ACTION_MAPPINGS[message.intent], SOURCE_DEFAULT)
        loop = tracker.active_loop_name
        if loop is not None and tracker.latest_action is not None and not tracker.active_loop_rejected:
            # The happy path: the form runs on every user input and then waits for the next.
            if latest != loop:
                return _Decision(loop, SOURCE_LOOP, no_user=True)
            return _Decision(ACTION_LISTEN, SOURCE_LOOP, no_user=True)
        rule = self._best_rule(states)
        if rule is None:
            return _Decision(None)
        decision = _Decision(rule.action, SOURCE_RULES, tuple(rule.names))
        if loop is None:
            return decision
        conditions = {value for key, value in self.unhappy_path if rule_applies(key, states)}
        if rule.action == ACTION_LISTEN and rule.mentions_loop is None:
            # A general rule handled the interruption; the form takes over again (after
            # a bot action the form does not validate, so it needs no LoopInterrupted).
            if DO_NOT_PREDICT_LOOP_ACTION in conditions:
                return _Decision(None)
            return _Decision(loop, SOURCE_RULES, tuple(rule.names))
        decision.interrupted = LOOP_WAS_INTERRUPTED in conditions
        return decision

    def decide(self, events: Sequence[Event], domain: Domain, view: DomainView | None = None) -> _Decision:
        """The rule decision for the conversation so far (None when nothing applies)."""
        tracker = DialogueStateTracker(domain, events)
        states, _ = states_for_events(events, domain, view=view)
        return self._decide(tracker, states)

    def decide_with_rejection(
        self, events: list[Event], domain: Domain, expected: str, view: DomainView | None = None
    ) -> _Decision:
        """The decision when the data continues with `expected`.

        If the active form is predicted but the data does something else, the form must
        have rejected the input: `events` gets the rejection and the rules decide again.
        """
        decision = self.decide(events, domain, view)
        loop = DialogueStateTracker(domain, events).active_loop_name
        if loop is not None and decision.action == loop and expected != loop:
            events.append(ActionExecutionRejected(loop))
            decision = self.decide(events, domain, view)
        return decision

    def predict_action_probabilities(self, events: list[Event], domain: Domain) -> PolicyPrediction:
        """Probability 1 for the rule's action, else the fallback at its threshold."""
        decision = self.decide(events, domain)
        diagnostic: dict[str, Any] = {"source": decision.source, "rules": list(decision.rules)}
        if decision.action is not None:
            return self.prediction(
                domain,
                {decision.action: 1.0},
                is_no_user_prediction=decision.no_user,
                diagnostic=diagnostic,
                optional_events=[LoopInterrupted(True)] if decision.interrupted else [],
            )
        if self.config.get("enable_fallback_prediction", True):
            threshold = float(self.config.get("core_fallback_threshold", 0.3))
            diagnostic["source"] = SOURCE_FALLBACK
            return self.prediction(domain, {self.fallback_action_name: threshold}, diagnostic=diagnostic)
        return self.prediction(domain, diagnostic=diagnostic)
