"""The reader reproduces the counts Rasa 3.6 gives on real NLU datasets."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from trainkit.data.nlu_reader import read_nlu_file
from trainkit.data.summary import nlu_counts
from trainkit.data.training_data import TrainingData

LONE_NLU_FILES = [
    "banking77/train.yml",
    "banking77/test.yml",
    "snips2017/train.yml",
    "snips2017/test.yml",
]


def expected_counts(root: Path) -> dict[str, dict[str, int]]:
    expected = {}
    for line in (root / "expected-counts.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            if "nlu" in record:
                expected[record["nlu"]] = record["counts"]
    return expected


@pytest.mark.parametrize("name", LONE_NLU_FILES)
def test_lone_nlu_file_counts_match_rasa(shared_datasets, name):
    path = shared_datasets / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    expected = expected_counts(shared_datasets)[name]
    started = time.perf_counter()
    data = read_nlu_file(path)
    # the largest file (13.6k annotated examples) takes about a second
    assert time.perf_counter() - started < 5
    assert nlu_counts(data) == {k: expected[k] for k in nlu_counts(TrainingData())}


@pytest.mark.parametrize("collection", ["rasa-nlu-training-data", "rasa-examples", "assistants"])
def test_every_nlu_file_loads(shared_datasets, collection):
    files = sorted((shared_datasets / collection).rglob("nlu.yml"))
    if not files:
        pytest.skip(f"no nlu.yml files under {collection}")
    for path in files:
        data = read_nlu_file(path)
        assert data.nlu_examples, path
        assert all(m.path == str(path) and m.line for m in data.nlu_examples)


def test_knowledgebasebot_nlu_part(shared_datasets):
    path = shared_datasets / "rasa-examples/knowledgebasebot/data/nlu.yml"
    if not path.exists():
        pytest.skip(f"{path} not present")
    data = read_nlu_file(path)
    assert nlu_counts(data) == {
        "nlu_examples": 44,
        "nlu_intents": 4,
        "entity_types": 7,
        "synonyms": 16,
        "regexes": 0,
        "lookup_tables": 2,
    }
