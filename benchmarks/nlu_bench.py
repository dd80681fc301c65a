"""NLU accuracy and speed: train on a Rasa NLU file, evaluate on another.

Each case runs in its own process so its peak memory is its own. With `--quick` the
cases run on a small slice with few epochs: that proves the benchmark works (CI), it does
not measure anything worth reporting.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from benchmarks.common import ROOT, peak_rss_mb, shared_datasets, write_result

CASES = {
    "banking77-20per": ("banking77/train-20per.yml", "banking77/test.yml"),
    "snips2017-250per": ("snips2017/train-250per.yml", "snips2017/test.yml"),
    "banking77-full": ("banking77/train.yml", "banking77/test.yml"),
    "snips2017-full": ("snips2017/train.yml", "snips2017/test.yml"),
}
RASA_REFERENCE = {
    "banking77-20per": {"intent_accuracy": 0.790, "train_seconds": 978, "peak_rss_mb": 2260, "parses_per_second": 63},
    "snips2017-250per": {"intent_accuracy": 0.981, "entity_f1": 0.755, "train_seconds": 2585,
                         "peak_rss_mb": 4900, "parses_per_second": 52},
}


def _slice(source: Path, per_intent: int, target: Path) -> Path:
    from trainkit.data.nlu_reader import read_nlu_file

    data = read_nlu_file(source)
    lines = ['version: "3.1"', "nlu:"]
    by_intent: dict[str, list] = {}
    for message in data.nlu_examples:
        by_intent.setdefault(message.intent, []).append(message)
    for intent, messages in sorted(by_intent.items()):
        lines.append(f"- intent: {intent}\n  examples: |")
        for message in messages[:per_intent]:
            text = message.text
            for entity in sorted(message.entities, key=lambda e: -e.start):
                text = text[: entity.start] + f"[{text[entity.start:entity.end]}]({entity.entity})" + text[entity.end :]
            lines.append(f"    - {text}")
    target.write_text("\n".join(lines) + "\n")
    return target


def run_case(train_file: Path, test_file: Path, config: Path | None, epochs: int | None) -> dict:
    """Train and evaluate one case in this process."""
    import trainkit
    from trainkit.data.nlu_reader import read_nlu_file
    from trainkit.evaluation import evaluate_nlu

    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory(prefix="trainkit-nlu-bench-") as tmp:
        os.environ["TRAINKIT_CACHE_DIR"] = str(Path(tmp) / "cache")
        config_path = config
        if epochs is not None:
            from trainkit.data.config import default_config
            from trainkit.data.yaml_io import load_yaml, to_plain

            cfg = to_plain(load_yaml(config)) if config else default_config()
            for item in cfg["pipeline"]:
                if "epochs" in item:
                    item["epochs"] = epochs
            config_path = Path(tmp) / "config.yml"
            config_path.write_text(json.dumps(cfg))
        started = time.perf_counter()
        result = trainkit.train_nlu(config_path, str(train_file), output=str(Path(tmp) / "models"),
                                    fixed_model_name="bench", project_dir=tmp)
        train_seconds = time.perf_counter() - started
        if result.model is None:
            raise SystemExit(f"training failed (code {result.code})")
        model = trainkit.load_model(result.model)
        report = evaluate_nlu(model, read_nlu_file(test_file))
    report["train_seconds"] = train_seconds
    report["peak_rss_mb"] = peak_rss_mb()
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", default="banking77-20per,snips2017-250per,banking77-full,snips2017-full")
    parser.add_argument("--quick", action="store_true", help="small slices, few epochs (CI)")
    parser.add_argument("--config", default=None, help="config.yml to use (default: trainkit's default)")
    parser.add_argument("--child", nargs=2, metavar=("TRAIN", "TEST"), help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        report = run_case(Path(args.child[0]), Path(args.child[1]), Path(args.config) if args.config else None,
                          args.epochs)
        print(json.dumps(report))
        return
    datasets = shared_datasets()
    if datasets is None:
        print("shared datasets not found; skipping the NLU benchmark")
        return
    results = {}
    with tempfile.TemporaryDirectory(prefix="trainkit-slices-") as tmp:
        for case in args.cases.split(","):
            train_file, test_file = (datasets / p for p in CASES[case])
            extra: list[str] = []
            if args.quick:
                train_file = _slice(train_file, 5, Path(tmp) / f"{case}-train.yml")
                test_file = _slice(test_file, 2, Path(tmp) / f"{case}-test.yml")
                extra = ["--epochs", "2"]
            if args.config:
                extra += ["--config", args.config]
            command = [sys.executable, "-m", "benchmarks.nlu_bench", "--child", str(train_file), str(test_file), *extra]
            done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
            if done.returncode != 0:
                raise SystemExit(f"case {case} failed:\n{done.stderr[-3000:]}")
            results[case] = json.loads(done.stdout.strip().splitlines()[-1])
            print(case, json.dumps(results[case]["intent"]), json.dumps(results[case]["entities"]), flush=True)
    name = "nlu-quick" if args.quick else "nlu"
    path = write_result(name, {"config": args.config or "trainkit default (Rasa's default pipeline)",
                               "quick": args.quick, "results": results, "reference_rasa_3_6": RASA_REFERENCE})
    print(path)


if __name__ == "__main__":
    main()
