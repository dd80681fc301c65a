"""Finetuning against training from scratch: accuracy and time.

NLU: train on a stratified 90% of an NLU training file, then finetune that model on the
whole file with an epoch fraction (0.2), and compare with a training from scratch on the
whole file: intent accuracy on the test file and wall time. Dialogue: the same with
rasa-init's stories (one story held back for the base model), compared on its test
stories. Each training has a cache of its own, so nothing the finetune needs comes from
the full training. `--epochs` sets the epochs of the pipeline's trainable components for
the NLU case (the comparison is between runs of the same config). For the NLU case it
also times planning the finetune again (what every `doit` invocation does): with the base
verified from scratch (extracted and digested) and as remembered from the first plan.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
import warnings
from pathlib import Path

from benchmarks.common import default_config_file, peak_rss_mb, shared_datasets, write_result

NLU_CASES = {
    "banking77": ("banking77/train.yml", "banking77/test.yml"),
    "banking77-20per": ("banking77/train-20per.yml", "banking77/test.yml"),
}


def _markup(message) -> str:
    text = message.text
    for entity in sorted(message.entities, key=lambda e: -e.start):
        text = text[: entity.start] + f"[{text[entity.start:entity.end]}]({entity.entity})" + text[entity.end :]
    return text


def write_nlu(messages, path: Path) -> Path:
    """An NLU file of `messages` (intent and entity markup kept)."""
    by_intent: dict[str, list] = {}
    for message in messages:
        by_intent.setdefault(message.intent, []).append(message)
    lines = ['version: "3.1"', "nlu:"]
    for intent, items in sorted(by_intent.items()):
        lines.append(f"- intent: {intent}\n  examples: |")
        lines.extend(f"    - {_markup(m)}" for m in items)
    path.write_text("\n".join(lines) + "\n")
    return path


def stratified_split(messages, fraction: float, seed: int = 0):
    """The first `fraction` of each intent's examples after a seeded shuffle."""
    rng = random.Random(seed)
    by_intent: dict[str, list] = {}
    for message in messages:
        by_intent.setdefault(message.intent, []).append(message)
    kept = []
    for intent in sorted(by_intent):
        items = list(by_intent[intent])
        rng.shuffle(items)
        kept.extend(items[: max(1, round(len(items) * fraction))])
    return kept


class NodeTimes:
    """Seconds per node of the trainings run inside the block (from the runner's log)."""

    def __enter__(self) -> dict:
        import logging

        self.times: dict = {}
        times = self.times

        class _Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if record.msg == "ran %s in %.2fs":
                    times[record.args[0]] = times.get(record.args[0], 0.0) + record.args[1]

        self.handler = _Handler(level=logging.DEBUG)
        self.logger = logging.getLogger("trainkit.engine.runner")
        self.level = self.logger.level
        self.logger.setLevel(logging.DEBUG)
        self.logger.addHandler(self.handler)
        return times

    def __exit__(self, *exc) -> None:
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.level)


def _trainable_seconds(times: dict) -> float:
    """Time of the nodes that finetune (the policies and classifiers that start from weights)."""
    names = ("DIETClassifier", "ResponseSelector", "TEDPolicy", "CRFEntityExtractor", "LogisticRegression")
    return sum(t for node, t in times.items() if node.startswith("train_") and any(n in node for n in names))


def _timed_nlu(config: Path, data: Path, work: Path, **kwargs):
    import trainkit

    os.environ["TRAINKIT_CACHE_DIR"] = str(work / "cache")
    started = time.perf_counter()
    result = trainkit.train_nlu(str(config), str(data), output=str(work / "models"), project_dir=str(work), **kwargs)
    return result.model, time.perf_counter() - started


def _replan_seconds(config: Path, data: Path, work: Path, base_model: str, fraction: float,
                    repeats: int = 3) -> dict:
    """Median seconds of planning the finetune, verifying the base afresh and remembered."""
    import statistics

    from trainkit.engine.verified_bases import MEMO_FILE
    from trainkit.training import TrainingType, prepare

    os.environ["TRAINKIT_CACHE_DIR"] = str(work / "cache")
    memo = work / ".trainkit" / MEMO_FILE

    def plan() -> float:
        started = time.perf_counter()
        prepare(None, str(config), str(data), str(work / "models"), only=TrainingType.NLU, project_dir=str(work),
                model_to_finetune=base_model, finetuning_epoch_fraction=fraction)
        return time.perf_counter() - started

    fresh, remembered = [], []
    for _ in range(repeats):
        memo.unlink(missing_ok=True)
        fresh.append(plan())
        remembered.append(plan())
    return {"verified_afresh": statistics.median(fresh), "remembered": statistics.median(remembered),
            "base_archive_mb": Path(base_model).stat().st_size / 2**20}


def nlu_case(name: str, epochs: int | None, fraction: float, datasets: Path) -> dict:
    import trainkit
    from trainkit.data.nlu_reader import read_nlu_file
    from trainkit.evaluation import evaluate_nlu

    train_file, test_file = (datasets / p for p in NLU_CASES[name])
    test = read_nlu_file(test_file)
    everything = read_nlu_file(train_file).nlu_examples
    with tempfile.TemporaryDirectory(prefix="trainkit-finetune-bench-") as tmp:
        root = Path(tmp)
        config = default_config_file(root, epochs)
        part = write_nlu(stratified_split(everything, 0.9), root / "train-90.yml")
        full = write_nlu(everything, root / "train-all.yml")
        (root / "base").mkdir()
        (root / "scratch").mkdir()
        base_model, base_seconds = _timed_nlu(config, part, root / "base")
        tuned_model, tuned_seconds = _timed_nlu(config, full, root / "base", model_to_finetune=base_model,
                                                finetuning_epoch_fraction=fraction)
        replan = _replan_seconds(config, full, root / "base", base_model, fraction)
        scratch_model, scratch_seconds = _timed_nlu(config, full, root / "scratch")
        scores = {label: evaluate_nlu(trainkit.load_model(path), test)["intent"]["accuracy"]
                  for label, path in (("base", base_model), ("finetuned", tuned_model), ("scratch", scratch_model))}
    return {
        "examples": {"base": len(stratified_split(everything, 0.9)), "all": len(everything)},
        "epochs": epochs,
        "epoch_fraction": fraction,
        "intent_accuracy": scores,
        "seconds": {"base": base_seconds, "finetune": tuned_seconds, "scratch": scratch_seconds},
        "time_ratio": tuned_seconds / scratch_seconds,
        "replan_seconds": replan,
        "accuracy_gap_points": 100 * (scores["scratch"] - scores["finetuned"]),
        "within_one_point": scores["finetuned"] >= scores["scratch"] - 0.01,
        "under_40_percent_time": tuned_seconds < 0.4 * scratch_seconds,
    }


def _hold_back_last_story(stories: Path) -> None:
    text = stories.read_text()
    head, _, _ = text.rpartition("\n- story:")
    stories.write_text(head + "\n")


def dialogue_case(fraction: float, datasets: Path) -> dict:
    import trainkit
    from trainkit.core.replay import replay_story_files

    source = datasets / "rasa-init"
    results = {}
    with tempfile.TemporaryDirectory(prefix="trainkit-finetune-dialogue-") as tmp:
        root = Path(tmp)
        for label in ("base", "scratch"):
            shutil.copytree(source, root / label, ignore=shutil.ignore_patterns("models", ".trainkit"))
        _hold_back_last_story(root / "base" / "data" / "stories.yml")

        def timed(work: Path, **kwargs):
            os.environ["TRAINKIT_CACHE_DIR"] = str(work / "cache")
            started = time.perf_counter()
            result = trainkit.train(str(work / "domain.yml"), str(work / "config.yml"), str(work / "data"),
                                    output=str(work / "models"), project_dir=str(work), **kwargs)
            return result.model, time.perf_counter() - started

        base_model, base_seconds = timed(root / "base")
        shutil.copy(source / "data" / "stories.yml", root / "base" / "data" / "stories.yml")
        with NodeTimes() as tuned_nodes:
            tuned_model, tuned_seconds = timed(root / "base", model_to_finetune=base_model,
                                               finetuning_epoch_fraction=fraction)
        with NodeTimes() as scratch_nodes:
            scratch_model, scratch_seconds = timed(root / "scratch")
        tests = sorted((source / "tests").glob("*.yml"))
        for label, path in (("base", base_model), ("finetuned", tuned_model), ("scratch", scratch_model)):
            report = replay_story_files(trainkit.load_model(path).ensemble, tests).as_dict()
            results[label] = f"{report['correct_actions']}/{report['actions']}"
    return {
        "epoch_fraction": fraction,
        "test_actions_correct": results,
        "seconds": {"base": base_seconds, "finetune": tuned_seconds, "scratch": scratch_seconds},
        "time_ratio": tuned_seconds / scratch_seconds,
        # the warm-started nodes alone (the rest of a build costs the same either way)
        "finetuned_nodes_seconds": {"finetune": _trainable_seconds(tuned_nodes),
                                    "scratch": _trainable_seconds(scratch_nodes)},
        "finetuned_nodes_time_ratio": _trainable_seconds(tuned_nodes) / max(_trainable_seconds(scratch_nodes), 1e-9),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nlu", default="banking77", help="NLU cases (comma separated; empty: none)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of the trainable NLU components")
    parser.add_argument("--fraction", type=float, default=0.2)
    parser.add_argument("--skip-dialogue", action="store_true")
    parser.add_argument("--name", default="finetune")
    args = parser.parse_args(argv)
    datasets = shared_datasets()
    if datasets is None:
        print("shared datasets not found; skipping the finetuning benchmark")
        return
    warnings.simplefilter("ignore")
    payload: dict = {"nlu": {}, "dialogue": None}
    for case in filter(None, args.nlu.split(",")):
        payload["nlu"][case] = nlu_case(case, args.epochs, args.fraction, datasets)
        print(case, json.dumps(payload["nlu"][case]), flush=True)
    if not args.skip_dialogue:
        payload["dialogue"] = dialogue_case(args.fraction, datasets)
        print("rasa-init", json.dumps(payload["dialogue"]), flush=True)
    payload["peak_rss_mb"] = peak_rss_mb()
    print(write_result(args.name, payload))


if __name__ == "__main__":
    main()
