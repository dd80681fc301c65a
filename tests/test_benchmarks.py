"""The benchmarks run end to end on small slices (proof that they work, not timings)."""

from __future__ import annotations

import json

from benchmarks import dialogue_bench, engine_bench, nlu_bench
from benchmarks.common import RESULTS


def test_nlu_benchmark_quick_run_writes_metrics(shared_datasets, monkeypatch):
    monkeypatch.setenv("TRAINKIT_SHARED_DATASETS", str(shared_datasets))
    nlu_bench.main(["--quick", "--cases", "banking77-20per,snips2017-250per"])
    report = json.loads((RESULTS / "nlu-quick.json").read_text())
    for case in ("banking77-20per", "snips2017-250per"):
        result = report["results"][case]
        assert 0.0 <= result["intent"]["accuracy"] <= 1.0
        assert result["intent"]["support"] > 0
        assert result["train_seconds"] > 0 and result["peak_rss_mb"] > 0 and result["parses_per_second"] > 0
    assert report["results"]["snips2017-250per"]["entities"]["support"] > 0


def test_engine_benchmark_writes_cache_behaviour(shared_datasets, monkeypatch):
    monkeypatch.setenv("TRAINKIT_SHARED_DATASETS", str(shared_datasets))
    engine_bench.main(["--config", "minimal"])
    report = json.loads((RESULTS / "engine-rasa-init-minimal.json").read_text())
    assert set(report["results"]) == {"cold_train", "noop_doit_train", "dry_run", "one_nlu_example_added"}
    assert report["results"]["dry_run"]["exit_code"] == 0


def test_dialogue_benchmark_records_story_and_action_accuracy(shared_datasets, monkeypatch):
    monkeypatch.setenv("TRAINKIT_SHARED_DATASETS", str(shared_datasets))
    dialogue_bench.main(["--assistants", "rasa-init", "--configs", "default", "--name", "dialogue-quick"])
    report = json.loads((RESULTS / "dialogue-quick.json").read_text())
    result = report["results"]["rasa-init"]["default"]
    assert (result["stories"], result["actions"]) == (7, 35)
    assert 0 <= result["correct_actions"] <= result["actions"] and result["train_seconds"] > 0
