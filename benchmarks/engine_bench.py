"""Cache behaviour of the engine on a real project (default: rasa-init, and the bundled
example assistant).

Measures, in a fresh copy of the project: the cold `doit train`, a no-op `doit train`, a
no-op `trainkit train` (the median of five), a dry run, a rebuild after adding one NLU
example, peak memory, and how many archives the no-op builds left (the goal is one: a
build with nothing changed writes nothing).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks.common import ROOT, run_timed, shared_datasets, write_result

EXAMPLE = ROOT / "examples" / "coffeebot"

MINIMAL_CONFIG = """\
recipe: default.v1
language: en
assistant_id: benchmark
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 4
  - name: LogisticRegressionClassifier
policies:
  - name: MemoizationPolicy
"""


def bench(project: Path, config: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="trainkit-bench-") as tmp:
        work = Path(tmp) / "project"
        shutil.copytree(project, work)
        if config == "minimal":
            (work / "config.yml").write_text(MINIMAL_CONFIG)
        (work / "dodo.py").write_text("from trainkit.tasks import *  # noqa\n")
        doit = [sys.executable, "-m", "doit"]
        trainkit_train = [sys.executable, "-m", "trainkit.cli", "train"]
        cold = run_timed([*doit, "train"], work)
        noop = run_timed([*doit, "train"], work)
        cli_noops = [run_timed(trainkit_train, work) for _ in range(5)]
        cli_noop = sorted(cli_noops, key=lambda run: run["seconds"])[2]
        archives = len(list((work / "models").glob("*.tar.gz")))
        dry = run_timed([*trainkit_train, "--dry-run"], work)
        nlu = next((work / "data").rglob("nlu.yml"))
        text = nlu.read_text()
        marker = "examples: |\n"
        index = text.index(marker) + len(marker)
        indent = text[index:].split("-", 1)[0]
        nlu.write_text(text[:index] + f"{indent}- hello from the benchmark\n" + text[index:])
        changed = run_timed([*doit, "train"], work)
        runs = {"cold_train": cold, "noop_doit_train": noop, "noop_trainkit_train": cli_noop, "dry_run": dry,
                "one_nlu_example_added": changed}
        for name, run in runs.items():
            if run["code"] != 0 and name != "dry_run":
                raise SystemExit(f"{name} failed:\n{run['stderr']}\n{run['stdout']}")
        results = {
            name: {"seconds": round(run["seconds"], 3), "peak_rss_mb": round(run["peak_rss_mb"], 1), "exit_code": run["code"]}
            for name, run in runs.items()
        }
        results["archives_after_noop_builds"] = archives
        return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project", default=None, help="project dir (default: shared rasa-init)")
    parser.add_argument("--config", choices=["project", "minimal"], default="project")
    args = parser.parse_args(argv)
    projects = [Path(args.project)] if args.project else []
    if not args.project:
        projects.append(EXAMPLE)
        datasets = shared_datasets()
        if datasets is None:
            print("shared datasets not found; benchmarking only the bundled example")
        else:
            projects.append(datasets / "rasa-init")
    for project in projects:
        results = bench(project, args.config)
        path = write_result(f"engine-{project.name}-{args.config}", {
            "project": project.name, "config": args.config, "results": results,
            "goal": {"noop_trainkit_train_s": 0.3, "archives_after_noop_builds": 1},
            "reference_rasa_3_6": {"cold_train_s": 88, "noop_retrain_s": 10.4, "dry_run_s": 6.2, "peak_rss_mb": 1400},
        })
        print(path.read_text())

if __name__ == "__main__":
    main()
