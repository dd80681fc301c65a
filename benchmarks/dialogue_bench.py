"""Dialogue accuracy and training time: replay each shared assistant's test stories.

For every assistant with test stories, the dialogue policies are trained (`train_core`)
on a copy of its data, then its test stories are replayed action by action as `rasa test
core` does. The config is Rasa's default (`default`: the config says only the language)
or the assistant's own policies (`project`). Rasa 3.6 gets every action of rasa-init,
formbot and financial-demo right with the default config.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

from benchmarks.common import peak_rss_mb, shared_datasets, write_result

ASSISTANTS = ["rasa-init", "rasa-examples/formbot", "rasa-examples/e2ebot", "assistants/financial-demo",
              "assistants/helpdesk-assistant"]
RASA_REFERENCE = {
    "rasa-init": {"stories": "7/7", "actions": "35/35"},
    "rasa-examples/formbot": {"stories": "3/3", "actions": "29/29"},
    "assistants/financial-demo": {"stories": "48/48", "actions": "317/317"},
}


def run_case(source: Path, config: str, workdir: Path) -> dict:
    """Train the dialogue policies of one assistant and replay its test stories."""
    import trainkit
    from trainkit.core.replay import replay_story_files

    shutil.copytree(source / "data", workdir / "data")
    shutil.copy(source / "domain.yml", workdir / "domain.yml")
    if config == "project":
        shutil.copy(source / "config.yml", workdir / "config.yml")
    else:
        (workdir / "config.yml").write_text("language: en\n")
    os.environ["TRAINKIT_CACHE_DIR"] = str(workdir / "cache")
    started = time.perf_counter()
    result = trainkit.train_core(str(workdir / "domain.yml"), str(workdir / "config.yml"), str(workdir / "data"),
                                 output=str(workdir / "models"), project_dir=str(workdir))
    train_seconds = time.perf_counter() - started
    model = trainkit.load_model(result.model)
    tests = sorted((source / "tests").glob("*.yml"))
    started = time.perf_counter()
    report = replay_story_files(model.ensemble, tests).as_dict()
    report["replay_seconds"] = time.perf_counter() - started
    report["train_seconds"] = train_seconds
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assistants", default=",".join(ASSISTANTS))
    parser.add_argument("--configs", default="default,project", help="default and/or project")
    parser.add_argument("--name", default="dialogue", help="result file name (without .json)")
    args = parser.parse_args(argv)
    datasets = shared_datasets()
    if datasets is None:
        print("shared datasets not found; skipping the dialogue benchmark")
        return
    warnings.simplefilter("ignore")
    results: dict[str, dict] = {}
    for assistant in args.assistants.split(","):
        for config in args.configs.split(","):
            from trainkit.errors import TrainkitError

            try:
                with tempfile.TemporaryDirectory(prefix="trainkit-dialogue-bench-") as tmp:
                    report = run_case(datasets / assistant, config, Path(tmp))
            except TrainkitError as exc:  # e.g. a project config naming a featurizer trainkit lacks
                results.setdefault(assistant, {})[config] = {"refused": str(exc)}
                print(f"{assistant} [{config}]: refused: {exc}", flush=True)
                continue
            results.setdefault(assistant, {})[config] = report
            print(f"{assistant} [{config}]: stories {report['correct_stories']}/{report['stories']}, actions "
                  f"{report['correct_actions']}/{report['actions']}, train {report['train_seconds']:.1f} s", flush=True)
    path = write_result(args.name, {"results": results, "reference_rasa_3_6_default_config": RASA_REFERENCE,
                                    "peak_rss_mb": peak_rss_mb()})
    print(path)


if __name__ == "__main__":
    main()
