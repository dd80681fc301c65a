"""Does trainkit's default NLU pipeline generalise at least as well as a linear baseline?

The baseline is the same featurizers (Rasa's default pipeline) with trainkit's
LogisticRegressionClassifier (TF-IDF weighting, L2-regularised multinomial logistic
regression, fitted to convergence) in place of DIETClassifier: the plain model a default
neural pipeline has to beat. Both are measured on held-out data only:

- files with a test split (banking77 20 per intent, snips2017 250 per intent): trained on
  the training file, evaluated on the test file;
- NLU files without one (the crowd-sourced domain files, the assistants' NLU data):
  stratified 5-fold cross-validation (`trainkit test nlu --cross-validation`'s folds), repeated with three fold seeds for files under 300
  examples, whose folds are otherwise too small to tell models apart.

Intent accuracy is `rasa test nlu`'s (best non-fallback intent). The result lists both
accuracies per file, the difference with the standard error of the paired per-fold
differences, and whether the default is at least the baseline.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

from benchmarks.common import shared_datasets, write_result
from trainkit.evaluation.cross_validation import stratified_folds

HELD_OUT = {
    "banking77-20per": ("banking77/train-20per.yml", "banking77/test.yml"),
    "snips2017-250per": ("snips2017/train-250per.yml", "snips2017/test.yml"),
}
CROSS_VALIDATED = {
    "nlu-data-banking": "rasa-nlu-training-data/banking/nlu.yml",
    "nlu-data-mood": "rasa-nlu-training-data/mood/nlu.yml",
    "nlu-data-weather": "rasa-nlu-training-data/weather/nlu.yml",
    "nlu-data-smalltalk": "rasa-nlu-training-data/smalltalk/nlu.yml",
    "nlu-data-car-purchase": "rasa-nlu-training-data/car-purchase/nlu.yml",
    "nlu-data-restaurant": "rasa-nlu-training-data/restaurant/nlu.yml",
    "helpdesk-assistant": "assistants/helpdesk-assistant/data/nlu.yml",
    "financial-demo": "assistants/financial-demo/data/nlu/nlu.yml",
}
FOLDS = 5
SMALL = 300


def default_config() -> dict[str, Any]:
    from trainkit.data.config import default_config as packaged

    config = packaged()
    config["policies"] = []
    return config


def baseline_config() -> dict[str, Any]:
    """The default pipeline with logistic regression instead of DIET (and no
    ResponseSelector, which the NLU files here do not use)."""
    config = default_config()
    pipeline = []
    for item in config["pipeline"]:
        if item["name"] == "DIETClassifier":
            pipeline.append({"name": "LogisticRegressionClassifier"})
        elif item["name"] != "ResponseSelector":
            pipeline.append(item)
    config["pipeline"] = pipeline
    return config


def _write_nlu(messages: list[Any], path: Path) -> Path:
    from trainkit.data.nlu_writer import write_nlu_file
    from trainkit.data.training_data import TrainingData

    return Path(write_nlu_file(TrainingData(list(messages)), path))


def evaluate(config: dict[str, Any], train_file: Path, test_file: Path, work: Path) -> dict[str, float]:
    """Train `config` on one file and evaluate on another, in a fresh cache."""
    import os

    import trainkit
    from trainkit.data.nlu_reader import read_nlu_file
    from trainkit.evaluation import evaluate_nlu

    work.mkdir(parents=True, exist_ok=True)
    os.environ["TRAINKIT_CACHE_DIR"] = str(work / "cache")
    config_file = work / "config.yml"
    config_file.write_text(json.dumps(config))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = trainkit.train_nlu(str(config_file), str(train_file), output=str(work / "models"),
                                    fixed_model_name="bench", project_dir=str(work))
        if result.model is None:
            raise SystemExit(f"training on {train_file} failed (code {result.code})")
        report = evaluate_nlu(trainkit.load_model(result.model), read_nlu_file(test_file))
    return {"intent_accuracy": report["intent"]["accuracy"], "entity_f1": report["entities"]["f1"],
            "examples": report["intent"]["support"]}


def splits(name: str, datasets: Path, tmp: Path, quick: bool) -> list[tuple[Path, Path]]:
    """(train, test) files of one benchmark."""
    from trainkit.data.nlu_reader import read_nlu_file

    if name in HELD_OUT:
        return [tuple(datasets / p for p in HELD_OUT[name])]  # type: ignore[misc]
    messages = [m for m in read_nlu_file(datasets / CROSS_VALIDATED[name]).nlu_examples if m.intent]
    seeds = 1 if quick or len(messages) >= SMALL else 3
    pairs = []
    for seed in range(seeds):
        folds = stratified_folds([m.intent for m in messages], FOLDS, seed)
        for fold, test_rows in enumerate(folds[: 1 if quick else FOLDS]):
            held_out = set(test_rows)
            train = [m for i, m in enumerate(messages) if i not in held_out]
            test = [messages[i] for i in test_rows]
            stem = tmp / f"{name}-s{seed}-f{fold}"
            pairs.append((_write_nlu(train, stem.with_suffix(".train.yml")), _write_nlu(test, stem.with_suffix(".test.yml"))))
    return pairs


def standard_error(differences: list[float]) -> float | None:
    """Standard error of the mean of paired per-split differences (None for one split):
    how far apart the two models are, measured against how much the splits disagree."""
    n = len(differences)
    if n < 2:
        return None
    mean = sum(differences) / n
    variance = sum((d - mean) ** 2 for d in differences) / (n - 1)
    return (variance / n) ** 0.5


def run(names: list[str], datasets: Path, quick: bool) -> dict[str, Any]:
    results: dict[str, Any] = {}
    configs = {"default": default_config(), "baseline": baseline_config()}
    if quick:
        for config in configs.values():
            for item in config["pipeline"]:
                if "epochs" in item:
                    item["epochs"] = 2
    with tempfile.TemporaryDirectory(prefix="trainkit-generalisation-") as tmp:
        for name in names:
            pairs = splits(name, datasets, Path(tmp), quick)
            row: dict[str, Any] = {"splits": len(pairs)}
            per_split: dict[str, list[float]] = {}
            for label, config in configs.items():
                scores = [evaluate(config, train, test, Path(tmp) / f"{name}-{label}-{i}")
                          for i, (train, test) in enumerate(pairs)]
                per_split[label] = [s["intent_accuracy"] for s in scores]
                row[label] = {
                    "intent_accuracy": sum(s["intent_accuracy"] for s in scores) / len(scores),
                    "entity_f1": sum(s["entity_f1"] for s in scores) / len(scores),
                }
            row["difference"] = row["default"]["intent_accuracy"] - row["baseline"]["intent_accuracy"]
            row["difference_standard_error"] = standard_error(
                [a - b for a, b in zip(per_split["default"], per_split["baseline"], strict=True)])
            row["default_at_least_baseline"] = row["difference"] >= 0
            results[name] = row
            error = row["difference_standard_error"]
            print(f"{name}: default {row['default']['intent_accuracy']:.4f}, "
                  f"baseline {row['baseline']['intent_accuracy']:.4f} ({row['difference']:+.4f}"
                  + (f" +- {error:.4f})" if error is not None else ")"), flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", default=",".join([*HELD_OUT, *CROSS_VALIDATED]))
    parser.add_argument("--quick", action="store_true", help="one fold, 2 epochs: proves the benchmark runs (CI)")
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    datasets = shared_datasets()
    if datasets is None:
        print("shared datasets not found; skipping the generalisation benchmark")
        return
    names = [n for n in args.cases.split(",") if n]
    unknown = [n for n in names if n not in HELD_OUT and n not in CROSS_VALIDATED]
    if unknown:
        raise SystemExit(f"unknown cases: {', '.join(unknown)}")
    results = run(names, datasets, args.quick)
    name = args.name or ("generalisation-quick" if args.quick else "generalisation")
    print(write_result(name, {"quick": args.quick, "folds": FOLDS, "results": results,
                              "mean_difference": sum(r["difference"] for r in results.values()) / max(len(results), 1)}))


if __name__ == "__main__":
    main()
