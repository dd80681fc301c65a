"""Replaying test stories with scripted predictions: Rasa's circuit breaker, end-to-end
user turns, the story report and `failed_test_stories.yml`."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainkit.core.ensemble import EnsemblePrediction
from trainkit.core.replay import CIRCUIT_BREAKER_TRIPPED, replay_stories
from trainkit.data.domain_reader import parse_domain
from trainkit.data.story_reader import read_story_file
from trainkit.data.yaml_io import load_yaml
from trainkit.evaluation.core_test import CoreTestResult
from trainkit.evaluation.story_writer import (
    NOTHING_FAILED,
    failed_stories_yaml,
    stories_with_warnings_yaml,
)

DOMAIN = """\
version: "3.1"
intents: [greet, order]
entities: [drink]
slots:
  drink:
    type: text
    mappings:
      - type: from_entity
        entity: drink
responses:
  utter_greet: [{text: hi}]
  utter_ok: [{text: ok}]
"""


class ScriptedEnsemble:
    """Predicts the given actions in turn, whatever the conversation."""

    def __init__(self, domain, actions):
        self.domain = domain
        self.actions = list(actions)
        self.calls = 0

    def predict_next_action(self, events):
        action = self.actions[self.calls]
        self.calls += 1
        return EnsemblePrediction(action, 0.9, "MemoizationPolicy", None)


@pytest.fixture
def domain(tmp_path):
    path = tmp_path / "domain.yml"
    path.write_text(DOMAIN)
    return parse_domain(load_yaml(path), path)


def _stories(tmp_path: Path, text: str):
    path = tmp_path / "test_stories.yml"
    path.write_text('version: "3.1"\nstories:\n' + text)
    return read_story_file(path)


def test_the_eleventh_action_after_a_user_message_trips_the_circuit_breaker(tmp_path, domain):
    steps = "".join("  - action: utter_ok\n" for _ in range(10))
    graph = _stories(tmp_path, f"- story: busy\n  steps:\n  - intent: greet\n{steps}  - intent: order\n"
                               "  - action: utter_ok\n")
    ensemble = ScriptedEnsemble(domain, ["utter_ok"] * 11 + ["action_listen"])
    story = replay_stories(ensemble, graph).stories[0]
    predicted = [a.predicted for a in story.actions]
    # Ten actions predicted, then the listen the story expects is the eleventh: tripped.
    # The next user message resets the count.
    assert predicted == ["utter_ok"] * 10 + [CIRCUIT_BREAKER_TRIPPED, "utter_ok", "action_listen"]
    assert story.actions[10].policy is None and story.actions[10].confidence is None
    assert ensemble.calls == 12  # a tripped breaker asks no policy
    assert not story.correct


def test_nine_actions_and_a_listen_do_not_trip_it(tmp_path, domain):
    steps = "".join("  - action: utter_ok\n" for _ in range(9))
    graph = _stories(tmp_path, f"- story: busy\n  steps:\n  - intent: greet\n{steps}")
    story = replay_stories(ScriptedEnsemble(domain, ["utter_ok"] * 9 + ["action_listen"]), graph).stories[0]
    assert story.correct and len(story.actions) == 10


STORY = """\
- story: order a drink
  steps:
  - user: |
      hello there
    intent: greet
  - action: utter_greet
  - user: |
      a [mocha](drink) please
    intent: order
  - slot_was_set:
    - drink: mocha
  - action: utter_ok
"""


def _parse(intent, entities=()):
    return lambda text: {"text": text, "intent": {"name": intent if "hello" in text else "order"},
                         "entities": list(entities) if "mocha" in text else []}


def test_story_report_counts_actions_and_conversations(tmp_path, domain):
    graph = _stories(tmp_path, STORY)
    # greet's utter_greet is right, utter_ok is predicted where the story listens.
    actions = ["utter_greet", "utter_ok", "utter_ok", "action_listen"]
    result = CoreTestResult(replay_stories(ScriptedEnsemble(domain, actions), graph))
    report = result.story_report()
    assert report["conversation_accuracy"] == {"accuracy": 0.0, "correct": 0, "with_warnings": 0, "total": 1}
    assert report["accuracy"] == pytest.approx(3 / 4)
    assert report["action_listen"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1-score": 2 / 3, "support": 2})
    assert report["utter_ok"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1-score": 2 / 3, "support": 1})
    assert result.in_data_fraction == 1.0  # every action came from a memoizing policy
    summary = result.summary()
    assert summary["action"]["correct"] == 3 and summary["action"]["total"] == 4


def test_end_to_end_checks_intents_and_entity_spans(tmp_path, domain):
    graph = _stories(tmp_path, STORY)
    actions = ["utter_greet", "action_listen", "utter_ok", "action_listen"]
    right = {"start": 2, "end": 7, "entity": "drink", "value": "mocha"}
    good = replay_stories(ScriptedEnsemble(domain, actions), graph, _parse("greet", [right]))
    assert good.stories[0].correct and len(good.stories[0].users) == 2
    wrong_span = {"start": 2, "end": 13, "entity": "drink", "value": "mocha please"}
    bad = replay_stories(ScriptedEnsemble(domain, actions), graph, _parse("order", [wrong_span]))
    users = bad.stories[0].users
    assert [(u.intent, u.predicted_intent, u.correct) for u in users] == [("greet", "order", False),
                                                                         ("order", "order", False)]
    targets, predictions = CoreTestResult(bad, e2e=True).labels()
    assert targets[4:] == ["greet", "order", "drink", "no_entity"]
    assert predictions[4:] == ["order", "order", "no_entity", "drink"]


def test_failed_stories_mark_wrong_steps_and_read_back_as_the_same_story(tmp_path, domain):
    graph = _stories(tmp_path, STORY)
    actions = ["utter_greet", "utter_ok", "utter_ok", "action_listen"]
    replay = replay_stories(ScriptedEnsemble(domain, actions), graph, _parse("order"))
    text = failed_stories_yaml(replay.stories)
    lines = text.splitlines()
    assert "  - user: |  # predicted: order: hello there" in lines
    # The first wrong action is the listen after utter_greet.
    wrong = [line for line in lines if "# predicted:" in line and "action" in line]
    assert wrong == ["  - action: action_listen  # predicted: utter_ok"]
    written = tmp_path / "failed.yml"
    written.write_text(text)
    again = read_story_file(written).story_steps[0].events
    original = [e for e in graph.story_steps[0].events]
    listen_free = [e for e in again if getattr(e, "action_name", None) != "action_listen"]
    assert listen_free == original


def test_no_failed_story_writes_the_all_good_comment(tmp_path, domain):
    graph = _stories(tmp_path, STORY)
    replay = replay_stories(ScriptedEnsemble(domain, ["utter_greet", "action_listen", "utter_ok", "action_listen"]),
                            graph)
    assert failed_stories_yaml(replay.stories) == NOTHING_FAILED


def test_a_text_only_user_turn_has_no_intent_to_get_wrong(tmp_path, domain):
    graph = _stories(tmp_path, "- story: text only\n  steps:\n  - user: |\n      hello there\n  - action: utter_greet\n")
    replay = replay_stories(ScriptedEnsemble(domain, ["utter_greet", "action_listen"]), graph, _parse("greet"))
    assert [(u.intent, u.predicted_intent, u.correct) for u in replay.stories[0].users] == [(None, None, True)]
    assert CoreTestResult(replay, e2e=True).labels()[0] == ["utter_greet", "action_listen"]


class UnlikelyEnsemble(ScriptedEnsemble):
    """Scripted, and records the events each prediction was asked for."""

    def __init__(self, domain, actions):
        super().__init__(domain, actions)
        self.seen = []

    def predict_next_action(self, events):
        self.seen.append(list(events))
        return super().predict_next_action(events)


WARNED = """\
- story: greet then order
  steps:
  - intent: greet
  - action: utter_greet
  - intent: order
  - action: utter_ok
"""


def test_a_predicted_unlikely_intent_is_a_warning_and_the_model_is_asked_again(tmp_path, domain):
    graph = _stories(tmp_path, WARNED)
    ensemble = UnlikelyEnsemble(domain, ["utter_greet", "action_listen", "action_unlikely_intent", "utter_ok",
                                         "action_listen"])
    replay = replay_stories(ensemble, graph)
    story = replay.stories[0]
    assert story.correct and story.has_warnings
    assert [a.predicted for a in story.actions] == ["utter_greet", "action_listen", "utter_ok", "action_listen"]
    # the second question sees the warning in the conversation, as Rasa's tracker holds it
    assert getattr(ensemble.seen[3][-1], "action_name", None) == "action_unlikely_intent"
    result = CoreTestResult(replay)
    assert result.story_report()["conversation_accuracy"] == {"accuracy": 1.0, "correct": 1, "with_warnings": 1,
                                                              "total": 1}
    assert result.summary()["action"]["total"] == 4  # the warning is no action of the story
    assert failed_stories_yaml(replay.stories) == NOTHING_FAILED
    text = stories_with_warnings_yaml(replay.stories)
    lines = text.splitlines()
    assert lines[:3] == ['version: "3.1"', "stories:", "- story: greet then order"]
    marked = lines.index("  - action: action_unlikely_intent  # predicted: action_unlikely_intent")
    assert lines[marked - 1] == "  - intent: order" and lines[marked + 1] == "  - action: utter_ok"
    written = tmp_path / "warned.yml"
    written.write_text(text)
    names = [getattr(e, "action_name", None) for e in read_story_file(written).story_steps[0].events]
    assert "action_unlikely_intent" in names


def test_a_wrong_action_after_the_warning_fails_the_story_and_says_so(tmp_path, domain):
    graph = _stories(tmp_path, WARNED)
    ensemble = UnlikelyEnsemble(domain, ["utter_greet", "action_listen", "action_unlikely_intent", "utter_greet",
                                         "action_listen"])
    replay = replay_stories(ensemble, graph)
    assert not replay.stories[0].correct
    lines = failed_stories_yaml(replay.stories).splitlines()
    assert "  - action: action_unlikely_intent  # predicted: action_unlikely_intent" in lines
    assert "  - action: utter_ok  # predicted: utter_greet after action_unlikely_intent" in lines
    assert stories_with_warnings_yaml(replay.stories).splitlines()[-1] == "stories: []"  # failed, not warned


def test_an_unlikely_intent_the_story_expects_but_the_model_misses_is_an_error(tmp_path, domain):
    graph = _stories(tmp_path, WARNED.replace("  - intent: order\n", "  - intent: order\n"
                                                                      "  - action: action_unlikely_intent\n"))
    replay = replay_stories(ScriptedEnsemble(domain, ["utter_greet", "action_listen", "utter_ok", "utter_ok",
                                                      "action_listen"]), graph)
    story = replay.stories[0]
    assert not story.correct and not story.has_warnings
    assert story.actions[2].expected == "action_unlikely_intent" and story.actions[2].predicted == "utter_ok"
    # and predicted where the story has it, it is simply right
    right = replay_stories(ScriptedEnsemble(domain, ["utter_greet", "action_listen", "action_unlikely_intent",
                                                     "utter_ok", "action_listen"]), graph).stories[0]
    assert right.correct and not right.has_warnings


def test_no_warning_writes_an_empty_story_list(tmp_path, domain):
    graph = _stories(tmp_path, STORY)
    replay = replay_stories(ScriptedEnsemble(domain, ["utter_greet", "action_listen", "utter_ok", "action_listen"]),
                            graph)
    text = stories_with_warnings_yaml(replay.stories)
    assert text.startswith("# ")
    assert load_yaml_text(text) == {"version": "3.1", "stories": []}


def load_yaml_text(text):
    import io

    from ruamel.yaml import YAML

    return YAML(typ="safe").load(io.StringIO(text))
