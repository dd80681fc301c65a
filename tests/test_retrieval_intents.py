"""Retrieval intents (`faq/ask_price`) add their `utter_faq` action to the domain, as Rasa does.

The project keeps its retrieval responses in a `responses.yml` beside the NLU files, one
of the layouts Rasa accepts.
"""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import pytest

import trainkit
from trainkit.core.ted import TEDPolicy
from trainkit.core.trackers import generate_trackers
from trainkit.data.domain import Domain
from trainkit.data.events import ActionExecuted, UserUttered
from trainkit.data.importer import load_project
from trainkit.data.validation import validate_project

FILES = {
    "domain.yml": """
        version: "3.1"
        intents: [greet, faq]
        responses:
          utter_greet: [{text: hello}]
        """,
    "data/nlu.yml": """
        version: "3.1"
        nlu:
        - intent: greet
          examples: |
            - hi
            - hello
        - intent: faq/ask_price
          examples: |
            - how much is it
            - what does it cost
        - intent: faq/ask_hours
          examples: |
            - when are you open
            - what are your hours
        """,
    "data/responses.yml": """
        version: "3.1"
        responses:
          utter_faq/ask_price:
          - text: ten euros
          utter_faq/ask_hours:
          - text: nine to five
        """,
    "data/stories.yml": """
        version: "3.1"
        stories:
        - story: greet then a question
          steps:
          - intent: greet
          - action: utter_greet
          - intent: faq
          - action: utter_faq
        rules:
        - rule: answer questions
          steps:
          - intent: faq
          - action: utter_faq
        """,
}

CONFIG = """
language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
  - name: DIETClassifier
    epochs: 5
  - name: ResponseSelector
    epochs: 5
policies:
  - name: MemoizationPolicy
  - name: RulePolicy
  - name: TEDPolicy
    epochs: 5
"""


@pytest.fixture
def faq_bot(tmp_path: Path) -> Path:
    for name, text in FILES.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    (tmp_path / "config.yml").write_text(CONFIG)
    return tmp_path


def _project(root: Path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        project = load_project(root / "config.yml", root / "domain.yml", root / "data")
    return project, caught


def test_responses_file_is_read_and_the_retrieval_action_joins_the_domain(faq_bot):
    project, caught = _project(faq_bot)
    assert not [w for w in caught if "ignored" in str(w.message)]
    assert set(project.training_data().responses) == {"utter_faq/ask_price", "utter_faq/ask_hours"}
    assert project.domain.retrieval_intents == ["faq"]
    assert "utter_faq" in project.domain.action_names_or_texts
    assert project.domain.actions == []  # what the user wrote is unchanged
    domain = Domain.from_dict(project.domain.as_dict())
    assert "utter_faq" in domain.action_names_or_texts


def test_validation_accepts_the_retrieval_action(faq_bot):
    project, _ = _project(faq_bot)
    messages = [p.message for p in validate_project(project) if p.level == "error"]
    assert not [m for m in messages if "utter_faq" in m], messages


def test_ted_trains_on_a_story_using_the_retrieval_action(faq_bot):
    project, _ = _project(faq_bot)
    domain = Domain.from_dict(project.domain.as_dict())
    trackers = generate_trackers(project.stories, domain, {"augmentation_factor": 0})
    policy = TEDPolicy({**TEDPolicy.defaults, "epochs": 30, "random_seed": 0}).fit(trackers, domain)
    events = [ActionExecuted("action_listen"), UserUttered("greet"), ActionExecuted("utter_greet"),
              ActionExecuted("action_listen"), UserUttered("faq")]
    prediction = policy.predict_action_probabilities(events, domain)
    assert domain.action_names_or_texts[prediction.best_index] == "utter_faq"


def test_rule_with_the_retrieval_action_predicts_it_in_a_trained_model(faq_bot, monkeypatch):
    monkeypatch.chdir(faq_bot)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = trainkit.train("domain.yml", "config.yml", "data")
    model = trainkit.load_model(result.model)
    chosen = model.predict_next_action([ActionExecuted("action_listen"), UserUttered("faq")])
    assert (chosen["action"], chosen["policy"], chosen["confidence"]) == ("utter_faq", "RulePolicy", 1.0)


def test_domain_intent_may_say_it_is_a_retrieval_intent(tmp_path):
    (tmp_path / "domain.yml").write_text(
        'version: "3.1"\nintents:\n- chitchat:\n    is_retrieval_intent: true\n- greet\n'
    )
    (tmp_path / "config.yml").write_text(CONFIG)
    (tmp_path / "data").mkdir()
    project, _ = _project(tmp_path)
    assert project.domain.retrieval_intents == ["chitchat"]
    assert "utter_chitchat" in project.domain.action_names_or_texts
