"""Replaying test stories action by action, as `rasa test core` does.

Each test story becomes one tracker (no augmentation, no gluing). Walking its events,
the model predicts every action from the conversation so far and is compared with the
action the story takes; then the story's own action is applied, so one mistake does not
derail the rest of the story. A story is right when every one of its actions is.

Test stories cannot run the forms, so when the model predicts the active form but the
story continues otherwise, the form is taken to have rejected the user's input (an
`ActionExecutionRejected` event) and the model is asked again, as in Rasa.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from trainkit.core.ensemble import PolicyEnsemble
from trainkit.core.tracker import DialogueStateTracker
from trainkit.core.trackers import GeneratorConfig, TrackerGenerator, TrainingTracker
from trainkit.data.domain import Domain
from trainkit.data.events import ActionExecuted, ActionExecutionRejected, Event
from trainkit.data.stories import StoryGraph, read_story_files


@dataclass
class ActionResult:
    """One predicted action of a test story."""

    expected: str
    predicted: str
    policy: str
    confidence: float

    @property
    def correct(self) -> bool:
        """Whether the prediction is the story's action."""
        return self.expected == self.predicted


@dataclass
class StoryResult:
    """Every action prediction of one test story."""

    name: str
    actions: list[ActionResult] = field(default_factory=list)

    @property
    def correct(self) -> bool:
        """A story is right when all of its actions are."""
        return all(action.correct for action in self.actions)


@dataclass
class DialogueReport:
    """Story and action accuracy over a set of test stories."""

    stories: list[StoryResult]

    @property
    def correct_stories(self) -> int:
        return sum(story.correct for story in self.stories)

    @property
    def total_actions(self) -> int:
        return sum(len(story.actions) for story in self.stories)

    @property
    def correct_actions(self) -> int:
        return sum(action.correct for story in self.stories for action in story.actions)

    def failures(self) -> list[str]:
        """One line per wrong prediction: story, expected and predicted action, policy."""
        return [
            f"{story.name}: expected '{a.expected}', predicted '{a.predicted}' ({a.policy})"
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
    loop = DialogueStateTracker(ensemble.domain, events).active_loop_name
    if (
        prediction.action != expected
        and loop is not None
        and prediction.action == loop
        and loop in ensemble.domain.form_names
    ):
        events.append(ActionExecutionRejected(loop))
        prediction = ensemble.predict_next_action(events)
    return ActionResult(expected, prediction.action, prediction.policy_name, prediction.confidence)


def replay_tracker(ensemble: PolicyEnsemble, tracker: TrainingTracker) -> StoryResult:
    """Predict each action of one story after the story's own events up to it.

    The story's first event (the opening `action_listen`) is given, not predicted.
    """
    result = StoryResult(tracker.name)
    running: list[Event] = list(tracker.events[:1])
    for event in tracker.events[1:]:
        if isinstance(event, ActionExecuted):
            expected = event.action_name or str(event.action_text)
            result.actions.append(_predict(ensemble, running, expected))
        running.append(event)
    return result


def replay_stories(ensemble: PolicyEnsemble, graph: StoryGraph) -> DialogueReport:
    """Replay every test story of `graph` against the ensemble's policies."""
    trackers: Sequence[TrainingTracker] = trackers_of_test_stories(graph, ensemble.domain)
    return DialogueReport([replay_tracker(ensemble, tracker) for tracker in trackers])


def replay_story_files(ensemble: PolicyEnsemble, paths: Sequence[str | Path]) -> DialogueReport:
    """Replay the test stories of the given story files."""
    return replay_stories(ensemble, read_story_files(paths))
