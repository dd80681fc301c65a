"""How training time and memory grow with the data, and what parallel jobs buy.

- NLU: train trainkit's default pipeline on 1k, 2.5k, 5k, 10k, 20k and 40k examples built
  from the shared banking77 and snips2017 training files (both intent sets, entities kept)
  and fit `seconds ~ n^a` and `peak RSS ~ n^b` by least squares on the log-log points.
  Sizes beyond the two files' unique examples (23.6k) add variants of real examples with
  a short lead-in phrase, so every example stays distinct, as Rasa would keep it.
- Parallel: a cold build of the bundled example assistant (independent NLU and dialogue
  halves) with `--jobs 1` and `--jobs 2`.

Each point runs in its own process (its peak RSS is its own). `--sizes` picks points,
`--epochs` shortens DIET (the exponents hold per epoch), `--max 100000` adds the stress
point the machine must fit.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks.common import ROOT, default_config_file, run_timed, shared_datasets, write_result

SIZES = (1000, 2500, 5000, 10000, 20000, 40000)
LEAD_INS = ("hi", "hello", "please", "hey there", "excuse me", "quick question", "so", "ok", "um", "well")
EXAMPLE = ROOT / "examples" / "coffeebot"


def _examples(datasets: Path) -> list[tuple[str, str]]:
    """(intent, annotated text) of both training files, exact duplicates dropped."""
    seen: dict[tuple[str, str], None] = {}
    for name in ("banking77/train.yml", "snips2017/train.yml"):
        intent = None
        for line in (datasets / name).read_text("utf-8").splitlines():
            stripped = line.strip()
            if stripped.startswith("- intent:"):
                intent = stripped.split(":", 1)[1].strip()
            elif stripped.startswith("- ") and intent and not stripped.startswith("- intent"):
                seen.setdefault((intent, stripped[2:]), None)
    return list(seen)


def build_nlu_file(datasets: Path, size: int, target: Path, seed: int = 817) -> Path:
    """A stratified-by-chance sample of `size` distinct examples, written as Rasa NLU YAML."""
    rng = random.Random(seed)
    pool = _examples(datasets)
    rng.shuffle(pool)
    chosen = pool[:size]
    lead = 0
    while len(chosen) < size:
        intent, text = pool[len(chosen) % len(pool)]
        chosen.append((intent, f"{LEAD_INS[lead % len(LEAD_INS)]} {text}"))
        lead += 1
    by_intent: dict[str, list[str]] = {}
    for intent, text in chosen:
        by_intent.setdefault(intent, []).append(text)
    lines = ['version: "3.1"', "nlu:"]
    for intent, texts in sorted(by_intent.items()):
        lines.append(f"- intent: {intent}\n  examples: |")
        lines.extend(f"    - {text}" for text in texts)
    target.write_text("\n".join(lines) + "\n", "utf-8")
    return target


def fitted_exponent(points: list[tuple[float, float]]) -> float | None:
    """Slope of log(y) against log(x): y grows like x to this power."""
    usable = [(math.log(x), math.log(y)) for x, y in points if x > 0 and y > 0]
    if len(usable) < 2:
        return None
    mean_x = sum(x for x, _ in usable) / len(usable)
    mean_y = sum(y for _, y in usable) / len(usable)
    spread = sum((x - mean_x) ** 2 for x, _ in usable)
    return round(sum((x - mean_x) * (y - mean_y) for x, y in usable) / spread, 3) if spread else None


def nlu_point(datasets: Path, size: int, epochs: int | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="trainkit-scaling-") as tmp:
        work = Path(tmp)
        nlu = build_nlu_file(datasets, size, work / "nlu.yml")
        config = default_config_file(work, epochs, policies=False)
        run = run_timed([sys.executable, "-m", "trainkit.cli", "train", "nlu", "--config", str(config),
                         "--nlu", str(nlu), "--out", str(work / "models")], work,
                        env={"TRAINKIT_CACHE_DIR": str(work / "cache")})
        if run["code"] != 0:
            raise SystemExit(f"{size} examples failed:\n{run['stderr']}")
        return {"examples": size, "seconds": round(run["seconds"], 2), "peak_rss_mb": round(run["peak_rss_mb"], 1)}


def jobs_comparison() -> dict:
    results = {}
    for jobs in (1, 2):
        with tempfile.TemporaryDirectory(prefix="trainkit-jobs-") as tmp:
            work = Path(tmp) / "bot"
            shutil.copytree(EXAMPLE, work)
            run = run_timed([sys.executable, "-m", "trainkit.cli", "train", "--jobs", str(jobs)], work,
                            env={"TRAINKIT_CACHE_DIR": str(Path(tmp) / "cache")})
            if run["code"] != 0:
                raise SystemExit(f"--jobs {jobs} failed:\n{run['stderr']}")
            results[f"jobs_{jobs}"] = {"seconds": round(run["seconds"], 2), "peak_rss_mb": round(run["peak_rss_mb"], 1)}
    results["speedup"] = round(results["jobs_1"]["seconds"] / results["jobs_2"]["seconds"], 2)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--epochs", type=int, default=None, help="DIET epochs (default: the pipeline's)")
    parser.add_argument("--max", type=int, default=None, help="also train this many examples (stress point)")
    parser.add_argument("--skip-jobs", action="store_true", help="skip the --jobs comparison")
    parser.add_argument("--name", default="scaling", help="result file name (benchmarks/results/NAME.json)")
    args = parser.parse_args(argv)
    datasets = shared_datasets()
    if datasets is None:
        print("shared datasets not found; skipping the scaling benchmark")
        return
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.max:
        sizes.append(args.max)
    points = []
    for size in sizes:
        points.append(nlu_point(datasets, size, args.epochs))
        print(json.dumps(points[-1]), flush=True)
    payload = {
        "epochs": args.epochs or "pipeline default",
        "nlu": points,
        "time_exponent": fitted_exponent([(p["examples"], p["seconds"]) for p in points]),
        "memory_exponent": fitted_exponent([(p["examples"], p["peak_rss_mb"]) for p in points]),
    }
    if not args.skip_jobs:
        payload["parallel"] = jobs_comparison()
    print(f"time ~ n^{payload['time_exponent']}, peak RSS ~ n^{payload['memory_exponent']}")
    print(write_result(args.name, payload))


if __name__ == "__main__":
    main()
