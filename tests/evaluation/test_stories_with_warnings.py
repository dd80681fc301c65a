"""`trainkit test core` on a tiny project whose policies predict `action_unlikely_intent`:
stories that pass with such a prediction go to `stories_with_warnings.yml`, as in Rasa."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import trainkit
from trainkit.data.story_reader import read_story_file
from trainkit.evaluation.project_test import run_core_tests

HERE = Path(__file__).resolve().parent

CONFIG = """\
language: en
policies:
  - name: MemoizationPolicy
  - name: unlikely_policy.UnlikelyIntentProbe
"""
DOMAIN = """\
version: "3.1"
intents: [greet, surprise, bye]
responses:
  utter_greet: [{text: hi}]
  utter_ok: [{text: ok}]
  utter_bye: [{text: bye}]
"""
STORIES = """\
version: "3.1"
stories:
- story: surprised
  steps:
  - intent: greet
  - action: utter_greet
  - intent: surprise
  - action: utter_ok
- story: plain
  steps:
  - intent: greet
  - action: utter_greet
  - intent: bye
  - action: utter_bye
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.delenv("TRAINKIT_CACHE_DIR", raising=False)
    monkeypatch.setenv("TRAINKIT_ALLOW_CUSTOM_COMPONENTS", "unlikely_policy")
    (tmp_path / "config.yml").write_text(CONFIG)
    (tmp_path / "domain.yml").write_text(DOMAIN)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "stories.yml").write_text(STORIES)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_stories.yml").write_text(STORIES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert trainkit.train("domain.yml", "config.yml", "data").model
    return tmp_path


def test_passed_stories_with_an_unlikely_intent_are_written_with_the_warning_marked(project):
    run = run_core_tests("models", ["tests"], "results", plots=False)
    assert run.core.replay.correct_stories == 2
    assert run.core.story_report()["conversation_accuracy"]["with_warnings"] == 1
    written = project / "results" / "stories_with_warnings.yml"
    assert Path("results", "stories_with_warnings.yml") in run.written.files
    text = written.read_text()
    assert "- story: surprised" in text and "- story: plain" not in text
    assert "  - intent: surprise\n  - action: action_unlikely_intent  # predicted: action_unlikely_intent\n" \
           "  - action: utter_ok\n" in text
    (story,) = read_story_file(written).story_steps
    assert story.block_name == "surprised"
    assert (project / "results" / "failed_test_stories.yml").read_text().startswith("# None of the test stories")


def test_without_unlikely_intents_the_file_is_an_empty_story_list(project):
    (project / "tests" / "test_stories.yml").write_text(STORIES.split("- story: plain")[0].replace(
        "surprise\n  - action: utter_ok", "bye\n  - action: utter_bye"))
    run = run_core_tests("models", ["tests"], "results", plots=False)
    assert run.core.replay.correct_stories == 1
    assert read_story_file(project / "results" / "stories_with_warnings.yml").story_steps == []
