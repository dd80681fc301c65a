"""The command line: help and version, validation exit codes, data summaries, and
one clean line per problem for every class of bad input (never a traceback)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from trainkit import __version__
from trainkit.cli import main

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "coffeebot"


@pytest.fixture
def bot(tmp_path, monkeypatch):
    target = tmp_path / "bot"
    shutil.copytree(EXAMPLE, target)
    monkeypatch.chdir(target)
    return target


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_version_and_help():
    assert run("--version").output.strip() == f"trainkit, version {__version__}"
    help_text = run("--help").output
    for command in ("train", "status", "validate", "data", "init", "parse"):
        assert command in help_text


def test_validate_passes_on_the_example(bot):
    result = run("validate")
    assert result.exit_code == 0, result.output
    assert "Validation passed" in result.output


def test_validate_lists_every_problem_and_fails(bot):
    stories = bot / "data" / "stories.yml"
    text = stories.read_text()
    text = text.replace("action: utter_greet", "action: utter_no_such_response", 1)
    text = text.replace("intent: greet", "intent: greeting_typo", 1)
    stories.write_text(text)
    result = run("validate")
    assert result.exit_code == 1
    assert "response 'utter_no_such_response' is not in the domain" in result.output
    assert "intent 'greeting_typo' is not in the domain" in result.output
    assert "stories.yml:" in result.output


def test_validate_fail_on_warnings(bot):
    domain = bot / "domain.yml"
    domain.write_text(domain.read_text().replace("intents:\n", "intents:\n  - never_used_intent\n", 1))
    assert run("validate").exit_code == 0
    result = run("validate", "--fail-on-warnings")
    assert result.exit_code == 1
    assert "never_used_intent" in result.output


def test_unresolved_slots_are_validation_errors(bot):
    stories = bot / "data" / "stories.yml"
    stories.write_text(stories.read_text() + "\n  - story: typo\n    steps:\n      - intent: greet\n"
                       "      - slot_was_set:\n          - mystery_slot: 1\n      - action: utter_greet\n")
    result = run("validate")
    assert result.exit_code == 1
    assert "slot 'mystery_slot' is set but not in the domain" in result.output


def test_data_summary_json_keys(bot):
    result = run("data", "summary", "--json")
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output)
    assert set(counts) == {
        "nlu_examples", "nlu_intents", "entity_types", "synonyms", "regexes", "lookup_tables",
        "domain_intents", "domain_entities", "slots", "responses", "forms", "actions", "stories", "rules",
    }
    assert counts["forms"] == 1 and counts["stories"] == 8 and counts["rules"] == 15


def test_data_summary_of_a_lone_nlu_file(bot):
    result = run("data", "summary", "--json", "--nlu", "data/nlu.yml")
    counts = json.loads(result.output)
    assert set(counts) == {"nlu_examples", "nlu_intents", "entity_types", "synonyms", "regexes", "lookup_tables"}
    assert counts["nlu_intents"] == 14


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"version: '3.1'\nnlu:\n- intent: greet\n  examples: |\n    - hi\n  bad: [\n", "YAML syntax error"),
        (b"version: '3.1'\nnlu:\n- intent: greet\n  exampels: |\n    - hi\n", "exampels"),
        (b"version: '3.1'\nnlu:\n- intent: [a, b]\n  examples: |\n    - hi\n", "intent"),
        (b"version: '9.9'\nnlu: []\n", "unsupported training data format version"),
        (b"nlu:\n- intent: greet\n  examples: |\n    - caf\xe9\n", "not valid UTF-8"),
        (b"\x00\x01\x02binary", "binary file"),
    ],
)
def test_bad_input_is_one_clean_line_naming_file_and_line(bot, content, expected):
    (bot / "data" / "extra.yml").write_bytes(content)
    result = run("data", "summary")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1, result.output
    assert "data/extra.yml:" in error_lines[0] and expected in error_lines[0]


def test_missing_path_is_a_clear_error(bot):
    result = run("data", "summary", "--data", "no/such/dir")
    assert result.exit_code == 1
    assert "no/such/dir: path does not exist" in result.output


def test_init_creates_a_project_that_validates(tmp_path, monkeypatch):
    result = run("init", str(tmp_path / "new"))
    assert result.exit_code == 0, result.output
    for name in ("config.yml", "domain.yml", "dodo.py", "Makefile", "data"):
        assert (tmp_path / "new" / name).exists()
    monkeypatch.chdir(tmp_path / "new")
    assert run("validate").exit_code == 0
    assert run("init", str(tmp_path / "new")).exit_code == 1  # refuses a non-empty directory


def test_no_training_data_exits_1(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    result = run("train")
    assert result.exit_code == 1


def test_test_command_without_a_model_is_a_clean_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("test")
    assert result.exit_code == 1 and "Traceback" not in result.output
