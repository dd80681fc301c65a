"""doit integration in a real subprocess: `doit train`, the dry run through
`doit list --status --all`, parallel builds, task options and the project lock."""

from __future__ import annotations

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
    result = doit(project, "list", "--status", "--all")
    assert result.returncode == 0, result.stderr
    statuses = {}
    for line in result.stdout.splitlines():
        mark, name = line.split()[:2]
        if name.startswith("train:") and name != "train:package":
            statuses[name.removeprefix("train:")] = mark
    return statuses


def test_doit_train_builds_then_is_a_no_op(project):
    first = doit(project, "train")
    assert first.returncode == 0, first.stderr + first.stdout
    assert len(list((project / "models").glob("nlu-*.tar.gz"))) == 1
    second = doit(project, "train")
    assert second.returncode == 0
    assert "-- train:train_FakeClassifier2" in second.stdout  # "--": up to date, skipped
    assert len(list((project / "models").glob("*.tar.gz"))) == 2  # a model is still produced


def test_doit_list_status_is_the_dry_run_and_agrees_with_the_api(project):
    assert set(listed_status(project).values()) == {"R"}
    assert doit(project, "train").returncode == 0
    assert set(listed_status(project).values()) == {"U"}
    (project / "config.yml").write_text(CONFIG + "    epochs: 3\n")
    statuses = listed_status(project)
    api = trainkit.train(None, "config.yml", "data", dry_run=True).dry_run_results
    stale_api = {name for name, r in api.items() if r["status"] != "up to date"}
    assert {name for name, mark in statuses.items() if mark == "R"} == stale_api == {"train_FakeClassifier2"}


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
