"""What a spaCy pipeline costs a build: digesting it, loading it, training and parsing.

Builds a pipeline with as many vectors as en_core_web_md (20,000 x 300, random but
seeded; the real one cannot be installed here), points moodbot's `SpacyNLP` at it, and
measures in a fresh copy of the project: the pipeline digest (first and remembered), a
cold `trainkit train`, a no-op `trainkit train` (the median of three), a dry run, and
parses per second of the trained model.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import run_timed, shared_datasets, write_result


def build_pipeline(target: Path, words: int, width: int) -> Path:
    """A blank English pipeline with `words` random word vectors of `width` dimensions."""
    import numpy as np
    import spacy

    nlp = spacy.blank("en")
    rng = np.random.default_rng(0)
    table = rng.standard_normal((words, width)).astype(np.float32)
    vocabulary = ["happy", "sad", "great", "hello", "bye", "good", "bad", "unhappy", "hi"]
    vocabulary += [f"w{i}" for i in range(words - len(vocabulary))]
    for word, vector in zip(vocabulary, table, strict=True):
        nlp.vocab.set_vector(word, vector)
    nlp.meta["name"] = "bench_md"
    nlp.to_disk(target)
    return target


def _digest_seconds(path: Path) -> dict:
    from trainkit.nlu import spacy_model

    started = time.perf_counter()
    spacy_model.pipeline_digest(path)
    first = time.perf_counter() - started
    started = time.perf_counter()
    spacy_model.pipeline_digest(path)
    return {"first": first, "remembered": time.perf_counter() - started}


def _parse_rate(model_dir: Path, seconds: float = 2.0) -> float:
    import trainkit

    model = trainkit.load_model(model_dir)
    texts = ["I am feeling great today", "so sad", "hello there", "bye"]
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        model.parse(texts[done % len(texts)])
        done += 1
    return done / (time.perf_counter() - started)


def bench(project: Path, words: int, width: int, parse_seconds: float = 2.0) -> dict:
    with tempfile.TemporaryDirectory(prefix="trainkit-bench-") as tmp:
        pipeline = build_pipeline(Path(tmp) / "pipeline", words, width)
        size = sum(p.stat().st_size for p in pipeline.rglob("*") if p.is_file())
        work = Path(tmp) / "project"
        shutil.copytree(project, work)
        config = work / "config.yml"
        config.write_text(config.read_text().replace('"en_core_web_md"', f'"{pipeline}"'))
        train = [sys.executable, "-m", "trainkit.cli", "train"]
        cold = run_timed(train, work)
        noops = sorted((run_timed(train, work) for _ in range(3)), key=lambda run: run["seconds"])
        dry = run_timed([*train, "--dry-run"], work)
        return {
            "pipeline": {"words": words, "width": width, "megabytes": size / 1e6},
            "digest_seconds": _digest_seconds(pipeline),
            "cold_train": {k: cold[k] for k in ("seconds", "code", "peak_rss_mb")},
            "noop_train": {k: noops[1][k] for k in ("seconds", "code")},
            "dry_run": {k: dry[k] for k in ("seconds", "code")},
            "parses_per_second": _parse_rate(work / "models", parse_seconds),
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--words", type=int, default=20_000)
    parser.add_argument("--width", type=int, default=300)
    parser.add_argument("--parse-seconds", type=float, default=2.0)
    parser.add_argument("--name", default="spacy")
    args = parser.parse_args(argv)
    datasets = shared_datasets()
    try:
        import spacy  # noqa: F401
    except ImportError:
        print("spacy_bench: spaCy is not installed (pip install 'trainkit[spacy]'); skipped")
        return
    if datasets is None:
        print("spacy_bench: shared datasets not found; skipped")
        return
    result = bench(datasets / "rasa-examples" / "moodbot", args.words, args.width, args.parse_seconds)
    print(write_result(args.name, {"project": "rasa-examples/moodbot", "results": result}))


if __name__ == "__main__":
    main()
