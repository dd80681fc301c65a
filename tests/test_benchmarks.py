"""The benchmarks run end to end on small slices (proof that they work, not timings)."""

from __future__ import annotations

import json

import pytest

from benchmarks import dialogue_bench, engine_bench, generalisation_bench, nlu_bench
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


def test_scaling_benchmark_fits_exponents(shared_datasets, monkeypatch, tmp_path):
    from benchmarks import scaling_bench

    monkeypatch.setenv("TRAINKIT_SHARED_DATASETS", str(shared_datasets))
    big = scaling_bench.build_nlu_file(shared_datasets, 30000, tmp_path / "nlu.yml")
    texts = [line for line in big.read_text().splitlines() if line.startswith("    - ")]
    assert len(texts) == len(set(texts)) == 30000  # past the files' unique examples, still distinct
    assert scaling_bench.fitted_exponent([(1, 2), (10, 20), (100, 200)]) == 1.0
    scaling_bench.main(["--sizes", "300,600", "--epochs", "1", "--skip-jobs"])
    report = json.loads((RESULTS / "scaling.json").read_text())
    assert [p["examples"] for p in report["nlu"]] == [300, 600]
    assert report["time_exponent"] is not None


def test_dialogue_benchmark_records_story_and_action_accuracy(shared_datasets, monkeypatch):
    monkeypatch.setenv("TRAINKIT_SHARED_DATASETS", str(shared_datasets))
    dialogue_bench.main(["--assistants", "rasa-init", "--configs", "default", "--name", "dialogue-quick"])
    report = json.loads((RESULTS / "dialogue-quick.json").read_text())
    result = report["results"]["rasa-init"]["default"]
    assert (result["stories"], result["actions"]) == (7, 35)
    assert 0 <= result["correct_actions"] <= result["actions"] and result["train_seconds"] > 0


def test_finetune_benchmark_dialogue_case_and_split(shared_datasets, monkeypatch):
    from benchmarks import finetune_bench
    from trainkit.data.nlu_reader import read_nlu_file

    monkeypatch.setenv("TRAINKIT_SHARED_DATASETS", str(shared_datasets))
    messages = read_nlu_file(shared_datasets / "banking77" / "train-20per.yml").nlu_examples
    part = finetune_bench.stratified_split(messages, 0.9)
    assert {m.intent for m in part} == {m.intent for m in messages}
    assert 0.85 * len(messages) < len(part) < 0.95 * len(messages)
    finetune_bench.main(["--nlu", "", "--name", "finetune-dialogue-quick"])
    report = json.loads((RESULTS / "finetune-dialogue-quick.json").read_text())
    dialogue = report["dialogue"]
    assert dialogue["test_actions_correct"]["finetuned"] == dialogue["test_actions_correct"]["scratch"] == "35/35"
    assert dialogue["seconds"]["finetune"] > 0


def test_spacy_benchmark_quick_run_writes_costs(shared_datasets, monkeypatch):
    pytest.importorskip("spacy")
    from benchmarks import spacy_bench

    monkeypatch.setenv("TRAINKIT_SHARED_DATASETS", str(shared_datasets))
    spacy_bench.main(["--words", "500", "--width", "20", "--parse-seconds", "0.1", "--name", "spacy-test"])
    results = json.loads((RESULTS / "spacy-test.json").read_text())["results"]
    assert results["cold_train"]["code"] == 0 and results["noop_train"]["code"] == 0
    assert results["dry_run"]["code"] == 0
    assert results["digest_seconds"]["first"] > 0 and results["parses_per_second"] > 0


def test_language_model_benchmark_quick_run_reports_targets_speed_and_memory(shared_datasets, monkeypatch):
    from benchmarks import lm_bench
    from trainkit.errors import ConfigError
    from trainkit.nlu.pretrained import locate

    try:
        locate({"model_name": "bert", "model_weights": lm_bench.WEIGHTS})
    except ConfigError:
        pytest.skip("all-MiniLM-L6-v2 is not installed")
    monkeypatch.setenv("TRAINKIT_SHARED_DATASETS", str(shared_datasets))
    lm_bench.main(["--quick"])
    report = json.loads((RESULTS / "lm-quick.json").read_text())
    encoding = report["results"]["encoding"]
    assert encoding["sentences"] == 64 and encoding["sentences_per_second"] > 0 and encoding["peak_rss_mb"] > 0
    for case in ("banking77-20per", "snips2017-250per"):
        result = report["results"][case]
        assert result["targets"] and isinstance(result["meets_targets"], bool)
        assert 0.0 <= result["intent"]["accuracy"] <= 1.0 and result["peak_rss_mb"] > 0


def test_large_benchmark_reports_time_and_peak_memory_per_node(shared_datasets, monkeypatch):
    from benchmarks import large_bench

    monkeypatch.setenv("TRAINKIT_SHARED_DATASETS", str(shared_datasets))
    large_bench.main(["--cases", "assistant", "--size", "400", "--epochs", "1", "--test-size", "300",
                     "--name", "large-quick"])
    result = json.loads((RESULTS / "large-quick.json").read_text())["results"]["assistant"]
    assert result["examples"] == 400 and result["diet_epochs"] == 1
    selectors = [name for name in result["nodes"] if name.startswith("train_ResponseSelector")]
    assert len(selectors) == 3  # one per retrieval intent
    for name in [*selectors, next(n for n in result["nodes"] if n.startswith("train_DIETClassifier"))]:
        node = result["nodes"][name]
        assert node["seconds"] > 0 and node["peak_rss_mb"] >= node["rss_at_start_mb"] > 0
        assert 0 < node["cpu_seconds"]
    assert result["response_selection"]["messages"] > 0
    assert result["train_cpu_seconds"] > 0
    assert 0 <= result["intent_accuracy"] <= 1 and 0 <= result["response_selection"]["accuracy"] <= 1


def test_generalisation_benchmark_quick_run_compares_with_the_baseline(shared_datasets, monkeypatch):
    monkeypatch.setenv("TRAINKIT_SHARED_DATASETS", str(shared_datasets))
    generalisation_bench.main(["--quick", "--cases", "nlu-data-restaurant,nlu-data-car-purchase"])
    report = json.loads((RESULTS / "generalisation-quick.json").read_text())
    for case in ("nlu-data-restaurant", "nlu-data-car-purchase"):
        row = report["results"][case]
        assert row["splits"] == 1
        for model in ("default", "baseline"):
            assert 0.0 <= row[model]["intent_accuracy"] <= 1.0
        assert row["difference"] == row["default"]["intent_accuracy"] - row["baseline"]["intent_accuracy"]
    # the baseline is fitted to convergence, so even the quick run learns something
    assert report["results"]["nlu-data-restaurant"]["baseline"]["intent_accuracy"] > 0.5


def test_generalisation_splits_partition_a_file_into_stratified_folds(shared_datasets, tmp_path):
    from trainkit.data.nlu_reader import read_nlu_file

    pairs = generalisation_bench.splits("nlu-data-restaurant", shared_datasets, tmp_path, quick=False)
    # 53 examples: three fold seeds of five folds
    assert len(pairs) == 15
    for seed in range(3):
        tests = [read_nlu_file(test).nlu_examples for _, test in pairs[5 * seed : 5 * seed + 5]]
        texts = sorted(m.text for fold in tests for m in fold)
        assert len(texts) == 53 and len(set(texts)) == 53
        for (train, _), fold in zip(pairs[5 * seed : 5 * seed + 5], tests, strict=True):
            trained = {m.text for m in read_nlu_file(train).nlu_examples}
            assert not trained & {m.text for m in fold}
            assert len(trained) + len(fold) == 53
            # every intent (4, 11 to 16 examples each) has two or three examples in each fold
            assert all(2 <= sum(m.intent == i for m in fold) <= 4 for i in {m.intent for m in fold})


def test_generalisation_standard_error_of_paired_differences():
    assert generalisation_bench.standard_error([0.1]) is None
    assert generalisation_bench.standard_error([0.0, 0.0, 0.0]) == 0.0
    # differences 0 and 0.2: mean 0.1, sample deviation 0.1414, over sqrt(2)
    assert abs(generalisation_bench.standard_error([0.0, 0.2]) - 0.1) < 1e-12
