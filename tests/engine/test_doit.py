"""doit integration in a real subprocess: `doit train`, the dry run through
`doit list --status --all`, parallel builds, task options and the project lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_components import NLU

import trainkit
from trainkit.engine import lock

HERE = Path(__file__).resolve().parent
CONFIG = """\
language: en
pipeline:
  - name: fake_components.FakeTokenizer
  - name: fake_components.FakeFeaturizer
  - name: fake_components.FakeClassifier
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "config.yml").write_text(CONFIG)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "nlu.yml").write_text(NLU)
    (tmp_path / "dodo.py").write_text("from trainkit.tasks import *  # noqa\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(HERE))
    return tmp_path


def doit(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join([str(HERE), environment.get("PYTHONPATH", "")])
    environment.pop("TRAINKIT_CACHE_DIR", None)
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "doit", *args], cwd=project, env=environment,
        capture_output=True, text=True, timeout=120,
    )


def listed_status(project: Path) -> dict[str, str]:
    """`doit list --status` as {node, "package" or "(group)" for `train` itself: "R" | "U"}."""
    result = doit(project, "list", "--status", "--all")
    assert result.returncode == 0, result.stderr
    statuses = {}
    for line in result.stdout.splitlines():
        mark, name = line.split()[:2]
        if name.startswith("train:"):
            statuses[name.removeprefix("train:")] = mark
        elif name == "train":
            statuses["(group)"] = mark
    return statuses


def test_doit_train_builds_then_is_a_no_op(project):
    first = doit(project, "train")
    assert first.returncode == 0, first.stderr + first.stdout
    assert len(list((project / "models").glob("nlu-*.tar.gz"))) == 1
    second = doit(project, "train")
    assert second.returncode == 0
    assert "-- train:train_FakeClassifier2" in second.stdout  # "--": up to date, skipped
    assert "-- train:package" in second.stdout
    assert len(list((project / "models").glob("*.tar.gz"))) == 1  # nothing changed: nothing written


def test_doit_list_status_is_the_dry_run_and_agrees_with_the_api(project):
    before = listed_status(project)
    assert {name for name, mark in before.items() if mark == "R"} == {
        "run_FakeTokenizer0", "train_FakeFeaturizer1", "run_FakeFeaturizer1", "train_FakeClassifier2", "package"}
    assert doit(project, "train").returncode == 0
    assert set(listed_status(project).values()) == {"U"}
    (project / "config.yml").write_text(CONFIG + "    epochs: 3\n")
    statuses = listed_status(project)
    api = trainkit.train(None, "config.yml", "data", dry_run=True).dry_run_results
    stale_api = {name for name, r in api.items() if r["status"] != "up to date"}
    assert {name for name, mark in statuses.items() if mark == "R"} == stale_api == {"train_FakeClassifier2", "package"}


def test_parallel_doit_and_task_options(project):
    result = doit(project, "-n", "2", "train", "--fixed-model-name", "bot", "--out", "dist")
    assert result.returncode == 0, result.stderr + result.stdout
    assert (project / "dist" / "bot.tar.gz").is_file()


def test_force_option_reruns_every_node(project):
    assert doit(project, "train").returncode == 0
    forced = doit(project, "train", "--force")
    assert forced.returncode == 0
    assert ".  train:train_FakeClassifier2" in forced.stdout


def test_second_build_waits_for_the_lock_then_stops_with_a_clear_message(project):
    fd = lock.acquire(project / ".trainkit")
    try:
        result = doit(project, "train", TRAINKIT_LOCK_TIMEOUT="1")
    finally:
        lock.release(fd)
    assert result.returncode != 0
    assert "another trainkit build is running in this project" in result.stderr + result.stdout


DOMAIN = """\
version: "3.1"
intents: [greet, bye]
responses:
  utter_greet:
  - text: Hello!
  utter_bye:
  - text: Bye!
"""
STORIES = """\
version: "3.1"
stories:
- story: greet and leave
  steps:
  - intent: greet
  - action: utter_greet
  - intent: bye
  - action: utter_bye
"""
FULL_CONFIG = CONFIG + """\
policies:
  - name: MemoizationPolicy
    max_history: {history}
"""


@pytest.fixture
def assistant(project):
    (project / "config.yml").write_text(FULL_CONFIG.format(history=3))
    (project / "domain.yml").write_text(DOMAIN)
    (project / "data" / "stories.yml").write_text(STORIES)
    return project


def three_views(project: Path) -> tuple[set[str], set[str], set[str]]:
    """Stale names according to the API's dry run, `trainkit status` and `doit list --status`."""
    api = trainkit.train("domain.yml", "config.yml", "data", dry_run=True).dry_run_results
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    environment.pop("TRAINKIT_CACHE_DIR", None)
    status = subprocess.run([sys.executable, "-m", "trainkit.cli", "status", "--json"], cwd=project,
                            env=environment, capture_output=True, text=True, timeout=120)
    assert status.returncode in (0, 1), status.stderr
    cli = json.loads(status.stdout)
    return (
        {name for name, r in api.items() if r["status"] != "up to date"},
        {name for name, r in cli.items() if r["status"] != "up to date"},
        {name for name, mark in listed_status(project).items() if mark == "R"},
    )


def test_trainkit_train_and_doit_share_one_truth(assistant):
    nlu = assistant / "data" / "nlu.yml"
    nlu.write_text("# edited only in a comment\n" + NLU)
    result = subprocess.run([sys.executable, "-m", "trainkit.cli", "train"], cwd=assistant, capture_output=True,
                            text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(HERE)))
    assert result.returncode == 0, result.stderr
    assert set(listed_status(assistant).values()) == {"U"}
    assert doit(assistant, "train").returncode == 0
    assert len(list((assistant / "models").glob("*.tar.gz"))) == 1


@pytest.mark.parametrize("edit, expected", [
    ("comment", set()),
    ("example", {"run_FakeTokenizer0", "train_FakeFeaturizer1", "run_FakeFeaturizer1",
                 "train_FakeClassifier2", "package"}),
    ("response", {"package"}),
    ("config", {"train_MemoizationPolicy0", "package"}),
])
def test_dry_run_status_and_doit_list_agree_after_an_edit(assistant, edit, expected):
    assert doit(assistant, "train").returncode == 0
    assert three_views(assistant) == (set(), set(), set())
    if edit == "comment":
        (assistant / "data" / "nlu.yml").write_text("# a comment\n" + NLU)
    elif edit == "example":
        (assistant / "data" / "nlu.yml").write_text(NLU + "    - farewell\n")
    elif edit == "response":
        (assistant / "domain.yml").write_text(DOMAIN.replace("Hello!", "Hi there!"))
    else:
        (assistant / "config.yml").write_text(FULL_CONFIG.format(history=5))
    api, cli, listed = three_views(assistant)
    assert api == cli == listed == expected
    assert doit(assistant, "train").returncode == 0
    assert three_views(assistant) == (set(), set(), set())


def test_doit_train_finetunes_a_model(project):
    (project / "config.yml").write_text(CONFIG.replace("FakeClassifier", "TunableClassifier"))
    assert doit(project, "train").returncode == 0
    base = next((project / "models").glob("*.tar.gz"))
    with (project / "data" / "nlu.yml").open("a") as handle:
        handle.write("- intent: greet\n  examples: |\n    - good evening\n")
    result = doit(project, "train", "--finetune", str(base), "--epoch-fraction", "0.5")
    assert result.returncode == 0, result.stderr
    models = sorted((project / "models").glob("*.tar.gz"))
    assert len(models) == 2
    import tarfile

    newest = max(models, key=lambda p: p.stat().st_mtime_ns)
    with tarfile.open(newest) as tar:
        name = next(m.name for m in tar.getmembers() if "TunableClassifier" in m.name and m.name.endswith("model.json"))
        assert json.loads(tar.extractfile(name).read())["history"] == [10, 5]
    # the same finetune again is up to date, task by task
    again = doit(project, "train", "--finetune", str(base), "--epoch-fraction", "0.5")
    assert again.returncode == 0, again.stderr
    tasks = [line for line in again.stdout.splitlines() if "train:" in line]
    assert tasks and all(line.startswith("-- ") for line in tasks), again.stdout
    assert len(list((project / "models").glob("*.tar.gz"))) == 2
    refused = doit(project, "train", "--finetune", str(project / "nothing.tar.gz"))
    assert refused.returncode != 0 and "cannot finetune" in refused.stderr + refused.stdout
    assert "Traceback" not in refused.stderr


def test_warnings_under_doit_are_one_clean_line_each(project):
    (project / "config.yml").write_text(CONFIG.replace("FakeClassifier\n", "FakeClassifier\n    colour: blue\n"))
    result = doit(project, "train")
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if "colour" in line]
    assert warned and all(line.startswith("Warning: ") for line in warned), result.stderr
    assert "UserWarning" not in result.stderr and "warnings.warn" not in result.stderr


def _nlu_intents(model: Path) -> list[str]:
    import tarfile

    with tarfile.open(model) as tar:
        metadata = json.loads(tar.extractfile("metadata.json").read())
    return metadata["labels"]["nlu"]["intents"]


THANKS = 'version: "3.1"\nnlu:\n- intent: thanks\n  examples: |\n    - thank you\n    - thanks a lot\n'


@pytest.mark.parametrize("spelling", [["--data", "data", "--data", "more"], ["--data", "data,more"],
                                      ["--data", "data", "--data", "more,"]])
def test_doit_train_data_takes_repeated_flags_and_commas(project, spelling):
    (project / "more").mkdir()
    (project / "more" / "thanks.yml").write_text(THANKS)
    result = doit(project, "train", *spelling)
    assert result.returncode == 0, result.stderr + result.stdout
    (model,) = (project / "models").glob("*.tar.gz")
    assert sorted(_nlu_intents(model)) == ["bye", "greet", "thanks"]


def test_doit_train_data_given_once_replaces_the_default(project):
    (project / "more").mkdir()
    (project / "more" / "nlu.yml").write_text(THANKS.replace("thanks", "greet").replace("greet a lot", "hi again")
                                              + "- intent: bye\n  examples: |\n    - bye bye\n")
    result = doit(project, "train", "--data", "more")
    assert result.returncode == 0, result.stderr + result.stdout
    (model,) = (project / "models").glob("*.tar.gz")
    assert sorted(_nlu_intents(model)) == ["bye", "greet"]
    # the default data directory was not read: adding an intent there changes nothing
    (project / "data" / "nlu.yml").write_text(NLU + THANKS.split("nlu:\n", 1)[1])
    assert "-- train:package" in doit(project, "train", "--data", "more").stdout


def test_data_on_the_command_line_replaces_the_configured_default(project):
    (project / "more").mkdir()
    (project / "more" / "thanks.yml").write_text(THANKS)
    (project / "pyproject.toml").write_text('[tool.doit.tasks.train]\ndata = "data,more"\n')
    assert doit(project, "train", "--fixed-model-name", "configured").returncode == 0
    assert sorted(_nlu_intents(project / "models" / "configured.tar.gz")) == ["bye", "greet", "thanks"]
    given = doit(project, "train", "--data", "data", "--fixed-model-name", "given")
    assert given.returncode == 0, given.stderr + given.stdout
    assert sorted(_nlu_intents(project / "models" / "given.tar.gz")) == ["bye", "greet"]
