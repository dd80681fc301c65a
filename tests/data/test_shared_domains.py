"""Every real domain.yml loads, and gives the counts Rasa 3.6 gives for it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainkit.data.domain_checks import check_forms, check_responses, check_slot_mappings
from trainkit.data.domain_reader import load_domain


def _project_lines(shared: Path) -> list[dict]:
    lines = (shared / "expected-counts.jsonl").read_text(encoding="utf-8").splitlines()
    return [entry for entry in map(json.loads, filter(None, lines)) if "project" in entry]


def test_domain_counts_match_rasa(shared_datasets: Path) -> None:
    projects = _project_lines(shared_datasets)
    assert projects
    mismatches = {}
    for entry in projects:
        domain = load_domain(shared_datasets / entry["project"] / "domain.yml")
        got = {
            "domain_intents": len(domain.intents),
            "domain_entities": len(domain.entities),
            "slots": len(domain.slots),
            "responses": len(domain.responses),
            "forms": len(domain.forms),
            "actions": len(domain.actions),
        }
        expected = {key: entry["counts"][key] for key in got}
        if got != expected:
            mismatches[entry["project"]] = (got, expected)
    assert mismatches == {}


def test_every_shared_domain_loads_cleanly(shared_datasets: Path) -> None:
    files = sorted(shared_datasets.rglob("domain.yml"))
    if not files:
        pytest.skip("no domain.yml under the shared datasets")
    for file in files:
        domain = load_domain(file)
        assert not domain.is_empty(), file
        errors = [
            problem
            for problem in check_forms(domain)
            + check_slot_mappings(domain)
            + check_responses(domain)
            if problem.level == "error"
        ]
        assert errors == [], file


def test_project_directory_gives_same_domain_as_file(shared_datasets: Path) -> None:
    for entry in _project_lines(shared_datasets):
        project = shared_datasets / entry["project"]
        assert load_domain(project) == load_domain(project / "domain.yml"), project
