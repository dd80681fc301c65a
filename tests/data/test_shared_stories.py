"""The story reader against real Rasa projects, checked with Rasa 3.6's own counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainkit.data.stories import StoryGraph
from trainkit.data.story_reader import has_story_data, read_story_document
from trainkit.data.yaml_io import YAML_SUFFIXES, load_yaml


def yaml_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in YAML_SUFFIXES)


def story_graph(files: list[Path]) -> StoryGraph:
    graph = StoryGraph()
    for path in files:
        document = load_yaml(path)
        if has_story_data(document):
            graph = graph.merge(read_story_document(document, path))
    return graph


def expected_projects(root: Path) -> list[tuple[str, dict]]:
    lines = (root / "expected-counts.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    return [(r["project"], r["counts"]) for r in records if "project" in r]


def test_every_story_file_loads(shared_datasets):
    loaded = 0
    for path in yaml_files(shared_datasets):
        document = load_yaml(path)
        if not has_story_data(document):
            continue
        graph = read_story_document(document, path)
        assert StoryGraph.from_dict(json.loads(json.dumps(graph.as_dict()))) == graph
        loaded += 1
    assert loaded > 0


def test_counts_match_rasa(shared_datasets):
    projects = expected_projects(shared_datasets)
    assert projects
    mismatches = []
    for project, counts in projects:
        graph = story_graph(yaml_files(shared_datasets / project / "data"))
        got = {"stories": graph.story_block_count(), "rules": graph.rule_block_count()}
        want = {"stories": counts["stories"], "rules": counts["rules"]}
        if got != want:
            mismatches.append((project, got, want))
    assert not mismatches


@pytest.mark.parametrize("project", ["assistants/financial-demo", "rasa-examples/formbot"])
def test_test_stories_load(shared_datasets, project):
    files = yaml_files(shared_datasets / project / "tests")
    graph = story_graph(files)
    assert graph.story_block_count() > 0
    assert graph.intents_used()
