"""`doit test`: in a real subprocess it runs after training and then is up to date; its
record is current until the model, a test file or an option changes."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import trainkit
from trainkit.evaluation.run_record import is_current, record_run, run_inputs

CONFIG = """\
language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
  - name: LogisticRegressionClassifier
"""

NLU = """\
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hello there
    - hi
    - good morning
- intent: bye
  examples: |
    - goodbye friend
    - bye
    - see you later
"""

HELD_OUT = """\
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hello
- intent: bye
  examples: |
    - goodbye
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "config.yml").write_text(CONFIG)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "nlu.yml").write_text(NLU)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "nlu.yml").write_text(HELD_OUT)
    (tmp_path / "dodo.py").write_text("from trainkit.tasks import *  # noqa\n")
    return tmp_path


def doit(project: Path, *args: str) -> subprocess.CompletedProcess:
    environment = dict(os.environ)
    environment.pop("TRAINKIT_CACHE_DIR", None)
    done = subprocess.run([sys.executable, "-m", "doit", *args], cwd=project, env=environment,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_doit_train_test_runs_the_tests_once_then_is_up_to_date(project):
    first = doit(project, "train", "test", "--nlu", "tests")
    assert "Intent evaluation (2 examples):" in first.stdout
    assert "Skipped core: the model has no dialogue policies." in first.stdout
    assert (project / "results" / "intent_report.json").is_file()
    assert "-- test" in doit(project, "train", "test", "--nlu", "tests").stdout


def test_the_record_is_current_until_the_model_or_a_test_file_changes(project, monkeypatch):
    monkeypatch.chdir(project)
    monkeypatch.delenv("TRAINKIT_CACHE_DIR", raising=False)
    options = {"model": "models", "stories": "tests", "nlu": "tests", "results": "results", "e2e": False}

    def inputs():
        return run_inputs("models", ["tests"], options)

    def train():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert trainkit.train_nlu("config.yml", "data").code == 0

    assert not is_current(inputs())  # no model yet
    train()
    report = project / "results" / "intent_report.json"
    report.parent.mkdir()
    report.write_text("{}")
    record_run(inputs(), [report])
    assert is_current(inputs())

    (project / "tests" / "nlu.yml").write_text(HELD_OUT)  # the same bytes again
    train()  # nothing changed: the same model
    assert is_current(inputs())

    (project / "tests" / "nlu.yml").write_text(HELD_OUT.replace("- goodbye", "- goodbye\n    - bye now"))
    assert not is_current(inputs())
    record_run(inputs(), [report])

    (project / "data" / "nlu.yml").write_text(NLU + "    - farewell\n")
    train()
    assert not is_current(inputs())  # a different model
    record_run(inputs(), [report])
    assert not is_current({**inputs(), "options": {**options, "e2e": True}})

    report.unlink()
    assert not is_current(inputs())  # its results are gone
