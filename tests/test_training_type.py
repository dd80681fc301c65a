"""Training-type detection and the checks that stop training before any graph work."""

from __future__ import annotations

import pytest

import trainkit
from trainkit.data.importer import load_project
from trainkit.training import NoTrainingData, TrainingType, UnresolvedSlots, detect_training_type

DOMAIN = """\
version: "3.1"
intents: [greet]
responses:
  utter_greet:
  - text: hi!
"""
NLU = """\
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hello
"""
STORIES = """\
version: "3.1"
stories:
- story: s
  steps:
  - intent: greet
  - action: utter_greet
"""
E2E_STORIES = """\
version: "3.1"
stories:
- story: s
  steps:
  - user: hello there bot
  - action: utter_greet
"""


def make(tmp_path, domain=DOMAIN, nlu=NLU, stories=STORIES):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    if nlu:
        (data / "nlu.yml").write_text(nlu)
    if stories:
        (data / "stories.yml").write_text(stories)
    domain_path = None
    if domain:
        domain_path = tmp_path / "domain.yml"
        domain_path.write_text(domain)
    return load_project(None, domain_path, data)


def test_both_when_domain_stories_and_nlu(tmp_path):
    assert detect_training_type(make(tmp_path)) == TrainingType.BOTH


def test_end_to_end_when_stories_hold_user_text(tmp_path):
    assert detect_training_type(make(tmp_path, stories=E2E_STORIES)) == TrainingType.END_TO_END


def test_nlu_only_without_domain(tmp_path):
    assert detect_training_type(make(tmp_path, domain=None)) == TrainingType.NLU


def test_nlu_only_without_stories(tmp_path):
    assert detect_training_type(make(tmp_path, stories=None)) == TrainingType.NLU


def test_core_only_without_nlu_examples(tmp_path):
    assert detect_training_type(make(tmp_path, nlu=None)) == TrainingType.CORE


def test_no_training_data_is_a_clear_error_and_code_1(tmp_path, monkeypatch):
    with pytest.raises(NoTrainingData, match="No training data"):
        detect_training_type(make(tmp_path, nlu=None, stories=None))
    monkeypatch.chdir(tmp_path)
    result = trainkit.train(str(tmp_path / "domain.yml"), None, str(tmp_path / "data"))
    assert result.code == 1 and result.model is None


def test_unresolved_slots_stop_training_and_list_each_slot(tmp_path, monkeypatch):
    stories = STORIES + "  - slot_was_set:\n    - colour: red\n    - size: big\n"
    make(tmp_path, stories=stories)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnresolvedSlots) as caught:
        trainkit.train("domain.yml", None, "data", dry_run=True)
    assert caught.value.slots == ["colour", "size"]
    assert "'colour', 'size'" in str(caught.value)


def test_requested_slot_is_built_in_when_there_are_forms(tmp_path, monkeypatch):
    domain = DOMAIN + "slots:\n  a:\n    type: text\n    mappings:\n    - type: from_text\n" \
        "forms:\n  f:\n    required_slots: [a]\n"
    stories = STORIES + "  - slot_was_set:\n    - requested_slot: a\n"
    project = make(tmp_path, domain=domain, stories=stories)
    from trainkit.training import unresolved_slots

    assert unresolved_slots(project) == []
