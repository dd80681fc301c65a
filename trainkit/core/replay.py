"""Replaying test stories action by action, as `rasa test core` does.

Each test story becomes one tracker (no augmentation, no gluing). Walking its events,
the model predicts every action from the conversation so far and is compared with the
action the story takes; then the story's own action is applied, so one mistake does not
derail the rest of the story. A story is right when every one of its actions is.

Test stories cannot run the forms, so when the model predicts the active form but the
story continues otherwise, the form is taken to have rejected the user's input (an
`ActionExecutionRejected` event) and the model is asked again, as in Rasa.

When the model predicts `action_unlikely_intent` where the story takes another action,
the prediction is a warning, as in Rasa: the action is added to the conversation (the
other policies do not see it), the model is asked again, and the story is right if that
answer is; it is listed in `stories_with_warnings.yml`. A story that expects the action
where the model does not predict it has a wrong prediction like any other.

A live assistant stops after ten actions in a row without listening; replay keeps the
same circuit breaker, so an eleventh action the story expects after one user message is
scored as `circuit breaker tripped` while the model keeps predicting.

End-to-end replay (`parse` given) also runs each `user:` text through the NLU pipeline
and compares the intent and entities with the story's; the conversation still goes on
with the story's own labels, so a misread message does not change later predictions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from trainkit.core.ensemble import PolicyEnsemble
from trainkit.core.tracker import DialogueStateTracker
from trainkit.core.trackers import GeneratorConfig, TrackerGenerator, TrainingTracker
from trainkit.data.domain import Domain
from trainkit.data.events import (
    ACTION_LISTEN,
    ACTION_UNLIKELY_INTENT,
    ActionExecuted,
    ActionExecutionRejected,
    Event,
    UserUttered,
)
from trainkit.data.stories import StoryGraph
from trainkit.data.story_reader import read_story_files

# Rasa's limit on actions predicted after one user message (MAX_NUMBER_OF_PREDICTIONS).
MAX_PREDICTIONS_PER_TURN = 10
CIRCUIT_BREAKER_TRIPPED = "circuit breaker tripped"

Parse = Callable[[str], dict[str, Any]]


@dataclass
class ActionResult:
    """One predicted action of a test story."""

    expected: str
    predicted: str
    policy: str | None
    confidence: float | None
    # The model first predicted action_unlikely_intent here (a warning), then this.
    after_unlikely_intent: bool = False

    @property
    def correct(self) -> bool:
        """Whether the prediction is the story's action."""
        return self.expected == self.predicted


@dataclass
class UserResult:
    """One user turn of an end-to-end replay: the story's labels against the parse.

    Entities are compared as (start, end, entity, value) with values as text, as Rasa
    compares them; turns without a text take the story's labels as the parse.
    """

    text: str | None
    intent: str | None
    predicted_intent: str | None
    entities: list[dict[str, Any]] = field(default_factory=list)
    predicted_entities: list[dict[str, Any]] = field(default_factory=list)

    @property
    def correct(self) -> bool:
        return self.intent == self.predicted_intent and self.entities == self.predicted_entities


@dataclass
class ReplayStep:
    """An event of the replayed story and, for actions and parsed user turns, the
    prediction made at it."""

    event: Event
    result: ActionResult | UserResult | None = None
    # An action_unlikely_intent the model predicted and the story does not take.
    warning: bool = False


@dataclass
class StoryResult:
    """Every prediction of one test story, and the story as replayed."""

    name: str
    actions: list[ActionResult] = field(default_factory=list)
    users: list[UserResult] = field(default_factory=list)
    steps: list[ReplayStep] = field(default_factory=list)

    @property
    def correct(self) -> bool:
        """A story is right when all of its actions (and parsed user turns) are."""
        return all(a.correct for a in self.actions) and all(u.correct for u in self.users)

    @property
    def has_warnings(self) -> bool:
        """Whether the model predicted action_unlikely_intent where the story did not."""
        return any(step.warning for step in self.steps)


@dataclass
class DialogueReport:
    """Story and action accuracy over a set of test stories."""

    stories: list[StoryResult]

    @property
    def correct_stories(self) -> int:
        return sum(story.correct for story in self.stories)

    @property
    def stories_with_warnings(self) -> list[StoryResult]:
        """The stories that are right, with an action_unlikely_intent predicted on the way."""
        return [story for story in self.stories if story.correct and story.has_warnings]

    @property
    def total_actions(self) -> int:
        return sum(len(story.actions) for story in self.stories)

    @property
    def correct_actions(self) -> int:
        return sum(action.correct for story in self.stories for action in story.actions)

    def failures(self) -> list[str]:
        """One line per wrong prediction: story, expected and predicted action, policy."""
        return [
            f"{story.name}: expected '{a.expected}', predicted '{a.predicted}' ({a.policy or 'no policy'})"
            for story in self.stories
            for a in story.actions
            if not a.correct
        ]

    def as_dict(self) -> dict[str, Any]:
        """JSON summary (counts, accuracies and the wrong predictions)."""
        stories, actions = len(self.stories), self.total_actions
        return {
            "stories": stories,
            "correct_stories": self.correct_stories,
            "story_accuracy": self.correct_stories / stories if stories else 0.0,
            "actions": actions,
            "correct_actions": self.correct_actions,
            "action_accuracy": self.correct_actions / actions if actions else 0.0,
            "failures": self.failures(),
        }


def trackers_of_test_stories(graph: StoryGraph, domain: Domain) -> list[TrainingTracker]:
    """One tracker per test story (and `or` branch), in file order."""
    config = GeneratorConfig(augmentation_factor=0, remove_duplicates=False, use_story_concatenation=False)
    stories = StoryGraph([replace(step, is_test=False) for step in graph.story_steps if not step.is_rule])
    return TrackerGenerator(stories, domain, config).story_trackers()


def _predict(ensemble: PolicyEnsemble, events: list[Event], expected: str) -> ActionResult:
    prediction = ensemble.predict_next_action(events)
    warned = prediction.action == ACTION_UNLIKELY_INTENT and expected != ACTION_UNLIKELY_INTENT
    if warned:
        events.append(ActionExecuted(ACTION_UNLIKELY_INTENT))
        prediction = ensemble.predict_next_action(events)
    loop = DialogueStateTracker(ensemble.domain, events).active_loop_name
    if (
        prediction.action != expected
        and loop is not None
        and prediction.action == loop
        and loop in ensemble.domain.form_names
    ):
        events.append(ActionExecutionRejected(loop))
        prediction = ensemble.predict_next_action(events)
    return ActionResult(expected, prediction.action, prediction.policy_name, prediction.confidence, warned)


def _entity_key(entity: dict[str, Any]) -> tuple[int, int, str]:
    return (int(entity.get("start") or 0), int(entity.get("end") or 0), str(entity.get("entity")))


def _clean_entities(entities: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    cleaned = [{"start": e.get("start"), "end": e.get("end"), "entity": e.get("entity"), "value": str(e.get("value"))}
               for e in entities]
    return sorted(cleaned, key=_entity_key)


def _predicted_intent(parsed: dict[str, Any], gold: str | None) -> str | None:
    """The parsed intent; when it is not the story's, the full retrieval intent the
    response selector chose (a story may name `faq/ask_x`)."""
    predicted = (parsed.get("intent") or {}).get("name")
    if predicted != gold:
        selected = ((parsed.get("response_selector") or {}).get("default") or {}).get("response") or {}
        predicted = selected.get("intent_response_key") or predicted
    return predicted


def _check_user_turn(event: UserUttered, parse: Parse) -> UserResult:
    gold_intent = event.full_retrieval_intent or event.intent
    gold_entities = _clean_entities([e.as_dict() for e in event.entities if e.start is not None])
    if not event.text:
        return UserResult(None, gold_intent, gold_intent, gold_entities, gold_entities)
    parsed = parse(event.text)
    predicted_entities = _clean_entities(parsed.get("entities") or [])
    # A turn written as text only names no intent, so there is no intent to get wrong.
    predicted_intent = _predicted_intent(parsed, gold_intent) if gold_intent is not None else None
    return UserResult(event.text, gold_intent, predicted_intent, gold_entities, predicted_entities)


def replay_tracker(ensemble: PolicyEnsemble, tracker: TrainingTracker, parse: Parse | None = None) -> StoryResult:
    """Predict each action of one story after the story's own events up to it.

    The story's first event (the opening `action_listen`) is given, not predicted.
    """
    result = StoryResult(tracker.name)
    running: list[Event] = list(tracker.events[:1])
    predicted_since_user = 0
    wants_another_action = True
    for event in tracker.events[1:]:
        step = ReplayStep(event)
        if isinstance(event, ActionExecuted):
            expected = event.action_name or str(event.action_text)
            if predicted_since_user >= MAX_PREDICTIONS_PER_TURN and wants_another_action:
                action = ActionResult(expected, CIRCUIT_BREAKER_TRIPPED, None, None)
            else:
                action = _predict(ensemble, running, expected)
                if action.after_unlikely_intent:
                    result.steps.append(ReplayStep(ActionExecuted(ACTION_UNLIKELY_INTENT), warning=True))
            wants_another_action = action.predicted != ACTION_LISTEN
            predicted_since_user += 1
            result.actions.append(action)
            step.result = action
        elif isinstance(event, UserUttered):
            predicted_since_user = 0
            if parse is not None:
                step.result = _check_user_turn(event, parse)
                result.users.append(step.result)
        running.append(event)
        result.steps.append(step)
    return result


def replay_stories(ensemble: PolicyEnsemble, graph: StoryGraph, parse: Parse | None = None) -> DialogueReport:
    """Replay every test story of `graph` against the ensemble's policies (and, with
    `parse`, its user texts against the NLU pipeline)."""
    trackers: Sequence[TrainingTracker] = trackers_of_test_stories(graph, ensemble.domain)
    return DialogueReport([replay_tracker(ensemble, tracker, parse) for tracker in trackers])


def replay_story_files(ensemble: PolicyEnsemble, paths: Sequence[str | Path], parse: Parse | None = None) -> DialogueReport:
    """Replay the test stories of the given story files."""
    return replay_stories(ensemble, read_story_files(paths), parse)
