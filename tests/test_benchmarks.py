"""The benchmarks run end to end on small slices (proof that they work, not timings)."""

from __future__ import annotations

import json

from benchmarks import engine_bench, nlu_bench
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
    engine_bench.main(["--config", "minimal", "--project", str(shared_datasets / "rasa-init")])
    report = json.loads((RESULTS / "engine-rasa-init-minimal.json").read_text())
    results = report["results"]
    assert set(results) == {"cold_train", "noop_doit_train", "noop_trainkit_train", "dry_run",
                            "one_nlu_example_added", "archives_after_noop_builds"}
    assert results["dry_run"]["exit_code"] == 0
    assert results["archives_after_noop_builds"] == 1
