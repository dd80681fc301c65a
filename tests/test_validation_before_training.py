"""Misspelt names stop training with every problem at once, each as `file:line: what`.

Actions and responses the stories or the config use but the domain lacks are errors
(training could only crash or learn nonsense); intents, entities and form slots missing
from the domain are warnings, as in Rasa.
"""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

import trainkit
from trainkit.cli import main
from trainkit.data.importer import load_project
from trainkit.data.validation import validate_project
from trainkit.errors import DataErrors

DOMAIN = """
version: "3.1"
intents: [greet, order]
entities: [drink]
slots:
  drink: {type: text, mappings: [{type: from_entity, entity: drink}]}
forms:
  order_form:
    required_slots: [drink, size]
responses:
  utter_greet: [{text: hello}]
  utter_ask_drink: [{text: which drink?}]
actions: [action_submit]
"""

STORIES = """
version: "3.1"
stories:
- story: greet
  steps:
  - intent: greet
  - action: utter_gret
- story: order
  steps:
  - intent: order
    entities:
    - milk: oat
  - action: order_form
  - active_loop: order_form
  - active_loop: null
  - action: action_sumbit
rules:
- rule: thanks
  steps:
  - intent: thank
  - action: utter_thanks
"""

CONFIG = """
language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
  - name: DIETClassifier
    epochs: 1
policies:
  - name: MemoizationPolicy
  - name: RulePolicy
    core_fallback_action_name: action_my_fallback
"""

NLU = """
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hi
    - hello
- intent: order
  examples: |
    - a [latte](drink) please
    - one [mocha](drink)
"""


@pytest.fixture
def misspelt(tmp_path: Path, monkeypatch) -> Path:
    files = {"domain.yml": DOMAIN, "data/stories.yml": STORIES, "config.yml": CONFIG, "data/nlu.yml": NLU}
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if text in line)


def test_training_reports_every_unknown_action_at_its_own_line(misspelt):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataErrors) as caught:
            trainkit.train("domain.yml", "config.yml", "data")
    stories = Path("data") / "stories.yml"  # named as the user gave the paths
    found = [str(problem) for problem in caught.value.problems]
    assert any(p.startswith(f"{stories}:{line_of(stories, 'utter_gret')}:") and "'utter_gret'" in p for p in found)
    assert any(p.startswith(f"{stories}:{line_of(stories, 'action_sumbit')}:") and "'action_sumbit'" in p
               for p in found)
    assert any(p.startswith(f"{stories}:{line_of(stories, 'utter_thanks')}:") for p in found)
    config = Path("config.yml")
    assert any(p.startswith(f"{config}:{line_of(config, 'RulePolicy')}:") and "'action_my_fallback'" in p
               for p in found)
    # missing intents, entities and form slots only warn
    assert not [p for p in found if "'thank'" in p or "'milk'" in p or "'size'" in p]


def test_cli_train_prints_each_problem_and_no_traceback(misspelt):
    result = CliRunner().invoke(main, ["train"])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 4, result.output
    assert "Traceback" not in result.output


def test_validate_warns_for_missing_intents_entities_and_form_slots(misspelt):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        project = load_project("config.yml", "domain.yml", "data")
    problems = validate_project(project)
    warned = " ".join(p.message for p in problems if p.level == "warning")
    errors = " ".join(p.message for p in problems if p.level == "error")
    assert "'thank'" in warned and "'milk'" in warned and "'size'" in warned
    assert "'utter_gret'" in errors and "'action_sumbit'" in errors and "'action_my_fallback'" in errors


def test_nlu_intents_and_entities_missing_from_the_domain_warn(misspelt):
    nlu = misspelt / "data" / "nlu.yml"
    nlu.write_text(nlu.read_text() + "- intent: thank\n  examples: |\n    - thanks [a lot](amount)\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        project = load_project("config.yml", "domain.yml", "data")
    levels = {p.message: p.level for p in validate_project(project)}
    assert levels["intent 'thank' has NLU examples but is not in the domain"] == "warning"
    assert levels["entity 'amount' is annotated but not in the domain"] == "warning"


def test_broken_files_report_every_broken_block_in_one_run(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "domain.yml").write_text('version: "3.1"\nintents: [greet]\nslots:\n  s: {type: number}\n')
    (tmp_path / "config.yml").write_text("language: en\n")
    (tmp_path / "data" / "stories.yml").write_text(textwrap.dedent("""
        version: "3.1"
        stories:
        - story: one
          steps:
          - intent: greet
          - acton: utter_greet
        - story: two
          steps: []
        - story: fine
          steps:
          - intent: greet
        """).lstrip("\n"))
    (tmp_path / "data" / "nlu.yml").write_text(textwrap.dedent("""
        version: "3.1"
        nlu:
        - intent: greet
          exampels: |
            - hi
        - intent: bye
          examples: |
            - see [you](
        """).lstrip("\n"))
    with pytest.raises(DataErrors) as caught:
        load_project(tmp_path / "config.yml", tmp_path / "domain.yml", tmp_path / "data")
    where = [(Path(p.path).name, p.line) for p in caught.value.problems]
    assert where == [("domain.yml", 4), ("nlu.yml", 4), ("nlu.yml", 8), ("stories.yml", 6), ("stories.yml", 8)]
