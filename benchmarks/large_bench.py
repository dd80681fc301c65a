"""Large assistants: time, peak memory per node and accuracy of two big trainings.

- `assistant`: 5,000 NLU examples drawn from the shared banking77 and snips2017 training
  files (entities kept), eighteen banking77 intents regrouped as the responses of three
  retrieval intents (`faq_card/...`, `faq_topup/...`, `faq_transfer/...`), each with its
  own `ResponseSelector` (`retrieval_intent` set), a domain with a response per key and a
  few stories and rules, trained cold with trainkit's default pipeline and policies and
  DIET at 200 epochs. Accuracy is measured on the held-out test files (mapped the same
  way): intent accuracy, entity F1, and the share of retrieval-intent test messages
  whose selector picks the right response key.
- `ted`: financial-demo's stories, rules and domain trained with a config of only
  `TEDPolicy` and `max_history` unset (the window is then the longest training
  history) and financial-demo's 40 epochs, scored on its test stories.

Each case runs in a child process (its peak RSS is its own) with the sequential runner.
Per node, the child records the wall time, the CPU time (what the node itself used, a
forked child of it included, which varies less than the wall time on a machine shared
with other work) and the process's peak RSS while the node ran (a forked child's peak is
reported apart, as `forked_child_peak_rss_mb`: most of its pages are the parent's):
before each node the kernel's high-water mark is reset (`/proc/self/clear_refs`), so the
reading is the node's own peak (everything the process holds then included, which is
what a machine must have). `--seed` sets the random seed of the assistant case's DIET
and ResponseSelectors, to see how far seeds alone move its accuracy. `--epochs`,
`--size`, `--test-size` and `--ted-epochs` shrink the cases (a quick check, not a
measurement).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, shared_datasets, write_result

SIZE = 5000
RETRIEVAL_GROUPS = {
    "faq_card": ("card_arrival", "card_delivery_estimate", "card_linking", "activate_my_card",
                 "card_about_to_expire", "getting_spare_card"),
    "faq_topup": ("automatic_top_up", "top_up_limits", "pending_top_up", "top_up_failed",
                  "top_up_by_card_charge", "verify_top_up"),
    "faq_transfer": ("cancel_transfer", "transfer_timing", "pending_transfer", "declined_transfer",
                     "failed_transfer", "transfer_fee_charged"),
}
# snips intents that the stories answer with an utterance of their own
TED_EPOCHS = 40
STORY_INTENTS = ("GetWeather", "PlayMusic", "BookRestaurant", "AddToPlaylist", "RateBook")


def _renamed(intent: str) -> str:
    for group, members in RETRIEVAL_GROUPS.items():
        if intent in members:
            return f"{group}/{intent}"
    return intent


def _read_examples(path: Path) -> list[tuple[str, str]]:
    """(intent, annotated example line) pairs of a Rasa NLU file, in file order."""
    out: list[tuple[str, str]] = []
    intent = None
    for line in path.read_text("utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("- intent:"):
            intent = stripped.split(":", 1)[1].strip().strip('"')
        elif stripped.startswith("- ") and intent:
            out.append((intent, stripped[2:]))
    return out


def _write_nlu(pairs: list[tuple[str, str]], path: Path) -> Path:
    by_intent: dict[str, list[str]] = {}
    for intent, text in pairs:
        by_intent.setdefault(_renamed(intent), []).append(text)
    lines = ['version: "3.1"', "nlu:"]
    for intent, texts in sorted(by_intent.items()):
        lines.append(f'- intent: "{intent}"\n  examples: |')
        lines.extend(f"    - {text}" for text in texts)
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def _domain(intents: list[str]) -> str:
    lines = ['version: "3.1"', "intents:"]
    lines += [f'  - "{name}"' for name in intents]
    lines.append("responses:")
    for group, members in RETRIEVAL_GROUPS.items():
        for member in members:
            lines += [f"  utter_{group}/{member}:", f'  - text: "About {member.replace("_", " ")}."']
    for intent in STORY_INTENTS:
        lines += [f"  utter_{intent.lower()}:", f'  - text: "Handling {intent}."']
    lines += ["  utter_anything_else:", '  - text: "Anything else?"']
    lines.append("actions:")
    lines += [f"  - utter_{group}" for group in RETRIEVAL_GROUPS]
    return "\n".join(lines) + "\n"


def _dialogue_data() -> str:
    lines = ['version: "3.1"', "rules:"]
    for group in RETRIEVAL_GROUPS:
        lines += [f"- rule: answer {group}", "  steps:", f"  - intent: {group}", f"  - action: utter_{group}"]
    lines.append("stories:")
    groups = list(RETRIEVAL_GROUPS)
    for i, intent in enumerate(STORY_INTENTS):
        group = groups[i % len(groups)]
        lines += [f"- story: {intent} then {group}", "  steps:",
                  f"  - intent: {intent}", f"  - action: utter_{intent.lower()}",
                  "  - action: utter_anything_else",
                  f"  - intent: {group}", f"  - action: utter_{group}"]
    return "\n".join(lines) + "\n"


def _config(epochs: int, seed: int | None = None) -> dict[str, Any]:
    from trainkit.data.config import default_config

    config = default_config()
    pipeline = []
    for item in config["pipeline"]:
        if item["name"] == "DIETClassifier":
            item = {**item, "epochs": epochs}
        if seed is not None and item["name"] in ("DIETClassifier", "ResponseSelector"):
            item = {**item, "random_seed": seed}
        if item["name"] == "ResponseSelector":
            pipeline.extend({**item, "retrieval_intent": group} for group in RETRIEVAL_GROUPS)
            continue
        pipeline.append(item)
    config["pipeline"] = pipeline
    return config


def build_assistant(datasets: Path, target: Path, epochs: int, size: int = SIZE, seed: int = 817,
                    test_size: int = 0, model_seed: int | None = None) -> Path:
    """Write the large assistant's project into `target`; returns its test NLU file."""
    pool: dict[tuple[str, str], None] = {}
    for name in ("banking77/train.yml", "snips2017/train.yml"):
        for pair in _read_examples(datasets / name):
            pool.setdefault(pair, None)
    examples = list(pool)
    random.Random(seed).shuffle(examples)
    chosen = examples[:size]
    (target / "data").mkdir(parents=True, exist_ok=True)
    _write_nlu(chosen, target / "data" / "nlu.yml")
    (target / "data" / "dialogue.yml").write_text(_dialogue_data(), "utf-8")
    intents = sorted({_renamed(i).split("/")[0] for i, _ in chosen})
    (target / "domain.yml").write_text(_domain(intents), "utf-8")
    (target / "config.yml").write_text(json.dumps(_config(epochs, model_seed), indent=1), "utf-8")
    test = [pair for name in ("banking77/test.yml", "snips2017/test.yml")
            for pair in _read_examples(datasets / name)]
    if test_size:
        test = random.Random(seed).sample(test, min(test_size, len(test)))
    return _write_nlu(test, target / "test_nlu.yml")


# -------------------------------------------------------------- measured in the child


class NodeMeter:
    """Wall time and peak RSS of each node the runner executes inside the block."""

    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, float]] = {}
        self._children_cpu_seen = 0.0

    def __enter__(self) -> NodeMeter:
        from trainkit.engine import runner

        self._runner = runner
        self._original = runner.execute_node
        original, nodes = self._original, self.nodes

        def measured(spec, node, *args, **kwargs):
            _reset_peak()
            start_rss = _status_mb("VmRSS")
            started = time.perf_counter()
            cpu_started = time.process_time() + _children_cpu()
            try:
                return original(spec, node, *args, **kwargs)
            finally:
                # a node's forked child (DIET's intent part) counts with the node: its
                # CPU time, and its peak RSS (pages shared with this process included)
                children_cpu = _children_cpu()
                nodes[node.name] = {"seconds": round(time.perf_counter() - started, 2),
                                    "cpu_seconds": round(time.process_time() + children_cpu - cpu_started, 2),
                                    "peak_rss_mb": round(_status_mb("VmHWM"), 1),
                                    "rss_at_start_mb": round(start_rss, 1)}
                if children_cpu > self._children_cpu_seen:
                    self._children_cpu_seen = children_cpu
                    nodes[node.name]["forked_child_peak_rss_mb"] = round(
                        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)

        runner.execute_node = measured
        return self

    def __exit__(self, *exc: object) -> None:
        self._runner.execute_node = self._original


def _children_cpu() -> float:
    """CPU seconds of this process's ended (waited-for) child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _reset_peak() -> None:
    """Reset the kernel's peak-RSS mark of this process (Linux 4.0+)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _status_mb(field: str) -> float:
    """A memory field of /proc/self/status in MiB (VmRSS now, VmHWM the peak since the
    last reset); NaN where the kernel does not report it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _retrieval_accuracy(parses: list[dict[str, Any]], truth: list[tuple[str, str | None]]) -> dict[str, Any]:
    """Share of retrieval-intent messages whose own selector (keyed by the true base
    intent) picks the true response key: what the user would get answered."""
    right = total = 0
    for parse, (intent, key) in zip(parses, truth, strict=True):
        if key is None:
            continue
        total += 1
        chosen = (parse.get("response_selector") or {}).get(intent, {}).get("response", {})
        right += chosen.get("intent_response_key") == key
    return {"messages": total, "accuracy": right / total if total else None}


def run_assistant(work: Path, epochs: int, size: int = SIZE, test_size: int = 0,
                  model_seed: int | None = None) -> dict[str, Any]:
    import trainkit
    from trainkit.data.nlu_reader import read_nlu_file
    from trainkit.evaluation.nlu import entity_report, intent_report

    datasets = shared_datasets()
    assert datasets is not None
    test_file = build_assistant(datasets, work / "bot", epochs, size, test_size=test_size, model_seed=model_seed)
    bot = work / "bot"
    os.environ["TRAINKIT_CACHE_DIR"] = str(work / "cache")
    started = time.perf_counter()
    with NodeMeter() as meter:
        result = trainkit.train(str(bot / "domain.yml"), str(bot / "config.yml"), str(bot / "data"),
                                output=str(work / "models"), project_dir=str(bot))
    seconds = time.perf_counter() - started
    cpu_seconds = sum(n["cpu_seconds"] for n in meter.nodes.values())
    if result.model is None:
        raise SystemExit(f"training failed (code {result.code})")
    model = trainkit.load_model(result.model)
    examples = read_nlu_file(test_file).nlu_examples
    texts = [m.text or "" for m in examples]
    parses = [p for i in range(0, len(texts), 256) for p in model.parse_batch(texts[i : i + 256])]
    intents = intent_report([m.intent or "" for m in examples], parses)
    entities = entity_report([[(e.start, e.end, e.entity) for e in m.entities] for m in examples], parses)
    retrieval = _retrieval_accuracy(parses, [(m.intent or "", m.intent_response_key) for m in examples])
    return {
        "examples": size,
        "random_seed": model_seed,
        "diet_epochs": epochs,
        "train_seconds": round(seconds, 1),
        "train_cpu_seconds": round(cpu_seconds, 1),
        "peak_rss_mb": max(n["peak_rss_mb"] for n in meter.nodes.values()),
        "nodes": meter.nodes,
        "test_examples": len(examples),
        "intent_accuracy": intents.accuracy,
        "entity_f1": entities["f1"],
        "response_selection": retrieval,
    }


def run_ted(work: Path, epochs: int = TED_EPOCHS, seed: int | None = None) -> dict[str, Any]:
    import trainkit
    from trainkit.core.replay import replay_story_files

    datasets = shared_datasets()
    assert datasets is not None
    source = datasets / "assistants" / "financial-demo"
    shutil.copytree(source / "data", work / "data")
    shutil.copy(source / "domain.yml", work / "domain.yml")
    # financial-demo's own TED epochs; nothing else, so TED alone is measured
    seeded = "" if seed is None else f"    random_seed: {seed}\n"
    (work / "config.yml").write_text(f"language: en\npolicies:\n  - name: TEDPolicy\n    epochs: {epochs}\n{seeded}")
    os.environ["TRAINKIT_CACHE_DIR"] = str(work / "cache")
    started = time.perf_counter()
    with NodeMeter() as meter:
        result = trainkit.train_core(str(work / "domain.yml"), str(work / "config.yml"), str(work / "data"),
                                     output=str(work / "models"), project_dir=str(work))
    seconds = time.perf_counter() - started
    model = trainkit.load_model(result.model)
    report = replay_story_files(model.ensemble, sorted((source / "tests").glob("*.yml"))).as_dict()
    ted = next(({"node": k, **v} for k, v in meter.nodes.items() if "TEDPolicy" in k), None)
    return {
        "ted_epochs": epochs,
        "ted_seed": seed,
        "train_seconds": round(seconds, 1),
        "peak_rss_mb": round(max(n["peak_rss_mb"] for n in meter.nodes.values()), 1),
        "ted_node": ted,
        "nodes": meter.nodes,
        "test_stories_correct": f"{report['correct_stories']}/{report['stories']}",
        "test_actions_correct": f"{report['correct_actions']}/{report['actions']}",
    }


def _child(case: str, args: argparse.Namespace) -> dict[str, Any]:
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory(prefix=f"trainkit-large-{case}-") as tmp:
        if case == "assistant":
            return run_assistant(Path(tmp), args.epochs, args.size, args.test_size, args.seed)
        return run_ted(Path(tmp), args.ted_epochs, args.ted_seed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", default="assistant,ted", help="assistant and/or ted")
    parser.add_argument("--epochs", type=int, default=200, help="DIET epochs of the assistant case")
    parser.add_argument("--size", type=int, default=SIZE, help="NLU examples of the assistant case")
    parser.add_argument("--test-size", type=int, default=0, help="held-out messages scored (0: all)")
    parser.add_argument("--ted-epochs", type=int, default=TED_EPOCHS, help="TED epochs of the ted case")
    parser.add_argument("--ted-seed", type=int, default=None, help="TED's random_seed (default: its own)")
    parser.add_argument("--seed", type=int, default=None,
                        help="random_seed of the assistant case's DIET and ResponseSelectors (default: their own)")
    parser.add_argument("--name", default="large", help="result file name (benchmarks/results/NAME.json)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args)))
        return
    if shared_datasets() is None:
        print("shared datasets not found; skipping the large-assistant benchmark")
        return
    results: dict[str, Any] = {}
    for case in filter(None, args.cases.split(",")):
        command = [sys.executable, "-m", "benchmarks.large_bench", "--child", case, "--epochs", str(args.epochs),
                   "--size", str(args.size), "--test-size", str(args.test_size), "--ted-epochs", str(args.ted_epochs)]
        if args.ted_seed is not None:
            command += ["--ted-seed", str(args.ted_seed)]
        if args.seed is not None:
            command += ["--seed", str(args.seed)]
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            raise SystemExit(f"case {case} failed:\n{done.stderr[-3000:]}")
        results[case] = json.loads(done.stdout.strip().splitlines()[-1])
        summary = {k: v for k, v in results[case].items() if k != "nodes"}
        print(case, json.dumps(summary), flush=True)
        for node, numbers in sorted(results[case]["nodes"].items(), key=lambda kv: -kv[1]["seconds"])[:8]:
            print(f"  {node}: {numbers['seconds']} s ({numbers['cpu_seconds']} s CPU), "
                  f"peak {numbers['peak_rss_mb']} MB", flush=True)
    print(write_result(args.name, {"results": results}))


if __name__ == "__main__":
    main()
