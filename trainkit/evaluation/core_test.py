"""`trainkit test core`: replayed test stories scored the way `rasa test core` scores them.

The story report is a classification report over every prediction the replay made:
each action, and with `--e2e` each user turn's intent and its entities (paired by exact
span). Conversation accuracy counts stories with no wrong prediction at all; of those, the ones
on whose way the model predicted `action_unlikely_intent` are counted `with_warnings`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainkit.core.replay import DialogueReport, replay_story_files
from trainkit.errors import TrainkitError
from trainkit.evaluation.metrics import classification_report, summary_scores
from trainkit.evaluation.nlu_test import align_entities

# Predictions by these policies reproduce the training data; their share is Rasa's
# "in-data fraction".
MEMOIZING_POLICIES = ("RulePolicy", "MemoizationPolicy", "AugmentedMemoizationPolicy")


@dataclass
class CoreTestResult:
    """The replay of a set of test stories and the scores of its predictions."""

    replay: DialogueReport
    e2e: bool = False

    def labels(self) -> tuple[list[str], list[str]]:
        """Targets and predictions: actions, then intents and entities of user turns."""
        targets: list[str] = []
        predictions: list[str] = []
        for story in self.replay.stories:
            targets += [a.expected for a in story.actions]
            predictions += [a.predicted for a in story.actions]
        for story in self.replay.stories:
            for user in story.users:
                if user.intent is not None:
                    targets.append(user.intent)
                    predictions.append(user.predicted_intent or "")
        for story in self.replay.stories:
            for user in story.users:
                entity_targets, entity_predictions = align_entities(user.entities, user.predicted_entities)
                targets += entity_targets
                predictions += entity_predictions
        return targets, predictions

    def story_report(self) -> dict[str, Any]:
        """`story_report.json`: per-label scores plus conversation accuracy."""
        report = classification_report(*self.labels())
        stories = len(self.replay.stories)
        correct = self.replay.correct_stories
        report["conversation_accuracy"] = {
            "accuracy": correct / stories if stories else 0.0, "correct": correct,
            "with_warnings": len(self.replay.stories_with_warnings), "total": stories,
        }
        return report

    @property
    def in_data_fraction(self) -> float:
        """Share of actions predicted by a policy that memorised them from training."""
        actions = [a for story in self.replay.stories for a in story.actions]
        memorised = [a for a in actions if a.policy and a.policy.endswith(MEMOIZING_POLICIES) and a.confidence]
        return len(memorised) / len(actions) if actions else 0.0

    def summary(self) -> dict[str, Any]:
        """Conversation- and action-level counts and scores, as the CLI prints them."""
        stories = len(self.replay.stories)
        actions = self.replay.total_actions
        correct_actions = self.replay.correct_actions
        scores = summary_scores(self.story_report())
        return {
            "conversation": {"correct": self.replay.correct_stories, "total": stories,
                             "accuracy": self.replay.correct_stories / stories if stories else 0.0},
            "action": {"correct": correct_actions, "total": actions,
                       "accuracy": correct_actions / actions if actions else 0.0,
                       "precision": scores["precision"], "f1_score": scores["f1_score"],
                       "in_data_fraction": self.in_data_fraction},
            "is_end_to_end_evaluation": self.e2e,
        }


def run_core_test(model: Any, story_files: Sequence[str | Path], e2e: bool = False) -> CoreTestResult:
    """Replay the test stories of `story_files` with `model` (and its NLU with `e2e`)."""
    if model.ensemble is None:
        raise TrainkitError("the model has no dialogue policies (it is an NLU-only model)")
    parse = None
    if e2e:
        if not model.has_nlu:
            raise TrainkitError("--e2e parses the stories' user texts, but the model has no NLU pipeline")
        parse = model.parse
    return CoreTestResult(replay_story_files(model.ensemble, story_files, parse), e2e)
