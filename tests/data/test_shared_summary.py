"""`trainkit data summary --json` gives Rasa 3.6's counts on every shared project and NLU file."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from trainkit.cli import main


def _cases(shared):
    return [json.loads(line) for line in (shared / "expected-counts.jsonl").read_text().splitlines() if line]


def test_every_shared_dataset_matches_rasa_counts(shared_datasets, monkeypatch):
    runner = CliRunner()
    mismatches = []
    for case in _cases(shared_datasets):
        if "project" in case:
            monkeypatch.chdir(shared_datasets / case["project"])
            result = runner.invoke(main, ["data", "summary", "--json"])
        else:
            monkeypatch.chdir(shared_datasets)
            result = runner.invoke(main, ["data", "summary", "--json", "--nlu", case["nlu"]])
        assert result.exit_code == 0, result.output
        got = json.loads(result.output.strip().splitlines()[-1])
        if got != case["counts"]:
            mismatches.append((case.get("project") or case.get("nlu"), case["counts"], got))
    assert not mismatches, mismatches


@pytest.mark.parametrize("project", ["rasa-init", "rasa-examples/formbot", "assistants/financial-demo"])
def test_shared_projects_validate_without_errors(shared_datasets, monkeypatch, project):
    monkeypatch.chdir(shared_datasets / project)
    result = CliRunner().invoke(main, ["validate"])
    assert result.exit_code == 0, result.output
