"""doit's own commands on trainkit's tasks, in a real subprocess: `doit forget` makes the
next build retrain what it forgot, `doit clean` removes the models the build wrote (the
cache only when asked), `doit info` says why a node is stale, `doit help train` lists
the task's options."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from fake_components import NLU
from test_doit import CONFIG, HERE, doit, listed_status

import trainkit
from trainkit.engine.cache import Cache

NODES = {"domain_provider", "nlu_training_data_provider", "run_FakeTokenizer0", "train_FakeFeaturizer1",
         "run_FakeFeaturizer1", "train_FakeClassifier2"}


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "config.yml").write_text(CONFIG)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "nlu.yml").write_text(NLU)
    (tmp_path / "dodo.py").write_text("from trainkit.tasks import *  # noqa\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.delenv("TRAINKIT_CACHE_DIR", raising=False)
    return tmp_path


DATA = {"domain_provider", "nlu_training_data_provider"}


def ran(result: subprocess.CompletedProcess) -> set[str]:
    """Tasks doit executed ('.  train:x'), not those it skipped as up to date ('-- train:x')."""
    return {line.split()[1].removeprefix("train:") for line in result.stdout.splitlines()
            if line.startswith(".  train:")}


def models(project: Path) -> list[Path]:
    return sorted((project / "models").glob("*.tar.gz"))


def status_json(project: Path) -> dict:
    environment = dict(os.environ, PYTHONPATH=str(HERE))
    environment.pop("TRAINKIT_CACHE_DIR", None)
    result = subprocess.run([sys.executable, "-m", "trainkit.cli", "status", "--json"], cwd=project,
                            env=environment, capture_output=True, text=True, timeout=120)
    return json.loads(result.stdout)


def test_doit_forget_train_makes_the_next_doit_train_retrain(project):
    assert doit(project, "train").returncode == 0
    forgot = doit(project, "forget", "train")
    assert forgot.returncode == 0, forgot.stderr
    listed = listed_status(project)
    assert {name for name, mark in listed.items() if mark == "R"} == NODES | {"package"}
    reasons = status_json(project)
    assert {name for name, r in reasons.items() if r["status"] != "up to date"} == NODES | {"package"}
    assert "forgotten" in reasons["nlu_training_data_provider"]["reason"]
    assert "forgotten" in reasons["run_FakeTokenizer0"]["reason"]
    again = doit(project, "train")
    assert again.returncode == 0, again.stderr
    assert ran(again) == NODES | {"package"}
    assert len(models(project)) == 2  # the forgotten package step wrote a model again
    third = doit(project, "train")
    assert ran(third) == set() and len(models(project)) == 2


def test_forgetting_one_node_retrains_that_node_only(project):
    assert doit(project, "train").returncode == 0
    assert doit(project, "forget", "train:train_FakeClassifier2").returncode == 0
    # The dry run cannot know the retrained output before it exists: the package waits for it.
    listed = {name for name, mark in listed_status(project).items() if mark == "R"}
    assert listed == {"train_FakeClassifier2", "package"}
    again = doit(project, "train")
    assert ran(again) == {"train_FakeClassifier2"}
    assert len(models(project)) == 1  # it trained the same output: the model is still current


def test_forget_works_after_a_build_doit_never_saw_and_with_all(project):
    trainkit.train(None, "config.yml", "data")  # built outside doit: doit's own database is empty
    assert set(listed_status(project).values()) == {"U"}
    assert doit(project, "forget", "train").returncode == 0
    assert ran(doit(project, "train")) == NODES | {"package"}
    assert doit(project, "forget", "--all").returncode == 0
    assert "train_FakeClassifier2" in ran(doit(project, "train"))


def test_a_forgotten_node_retrains_under_trainkit_train_too(project):
    trainkit.train(None, "config.yml", "data")
    assert doit(project, "forget", "train:train_FakeClassifier2").returncode == 0
    result = trainkit.train(None, "config.yml", "data", dry_run=True)
    assert result.code == 1
    assert result.dry_run_results["train_FakeClassifier2"]["status"] == "stale"
    trainkit.train(None, "config.yml", "data")
    assert trainkit.train(None, "config.yml", "data", dry_run=True).code == 0


def test_doit_clean_train_removes_the_models_it_wrote_and_keeps_the_cache(project):
    assert doit(project, "train").returncode == 0
    assert doit(project, "train", "--fixed-model-name", "bot").returncode == 0
    own = project / "models" / "mine.tar.gz"
    own.write_bytes(b"not written by the build")
    written = models(project)
    assert len(written) == 3
    dry = doit(project, "clean", "-n", "train")
    assert dry.returncode == 0, dry.stderr
    assert models(project) == written and "bot.tar.gz" in dry.stdout
    cleaned = doit(project, "clean", "train")
    assert cleaned.returncode == 0, cleaned.stderr
    assert models(project) == [own]
    assert "cache kept" in cleaned.stdout
    rebuilt = doit(project, "train")
    assert ran(rebuilt) == {"package"}  # packaged again from the cache, nothing trained


def test_doit_clean_removes_the_cache_when_asked(project):
    assert doit(project, "train").returncode == 0
    cleaned = doit(project, "clean", "train", TRAINKIT_CLEAN_CACHE="1")
    assert cleaned.returncode == 0, cleaned.stderr
    assert Cache(project / ".trainkit" / "cache").stats()["entries"] == 0
    assert "removed" in cleaned.stdout
    assert ran(doit(project, "train")) == NODES - DATA | {"package"}  # data nodes: re-read by the check


def test_doit_info_says_why_a_node_is_stale_in_words(project):
    assert doit(project, "train").returncode == 0
    (project / "config.yml").write_text(CONFIG + "    epochs: 3\n")
    info = doit(project, "info", "train:train_FakeClassifier2")
    assert "config changed: epochs" in info.stdout, info.stdout
    assert "'nodes':" not in info.stdout  # not the build spec's dump
    (project / "config.yml").write_text(CONFIG)
    assert doit(project, "forget", "train:train_FakeClassifier2").returncode == 0
    assert "forgotten" in doit(project, "info", "train:train_FakeClassifier2").stdout
    package = doit(project, "info", "train:package")
    assert "write the model archive" in package.stdout


def test_doit_help_train_lists_the_options_with_their_help(project):
    result = doit(project, "help", "train")
    assert result.returncode == 0, result.stderr
    for option in ("--config", "--domain", "--data", "--out", "--fixed-model-name", "--force", "--finetune",
                   "--epoch-fraction", "--num-threads"):
        assert option in result.stdout
    assert "comma" in result.stdout and "TRAINKIT_BLAS_THREADS" in result.stdout
    assert "--data=PATH" in result.stdout and "repeat" in result.stdout
    assert "doit forget" in result.stdout or "forget" in doit(project, "help", "train:package").stdout


def test_doit_train_help_prints_the_same_options(project):
    result = doit(project, "train", "--help")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "Error" not in result.stderr
    for option in ("--config", "--data=PATH", "--out", "--finetune", "--num-threads"):
        assert option in result.stdout
    assert "repeat" in result.stdout and "comma" in result.stdout
    assert not (project / "models").exists()  # only the help: nothing trained
    test_help = doit(project, "test", "--help")
    assert test_help.returncode == 0, test_help.stderr + test_help.stdout
    assert "--stories=PATH" in test_help.stdout and "--nlu=PATH" in test_help.stdout


def test_task_help_works_where_training_could_not_be_planned(tmp_path):
    (tmp_path / "dodo.py").write_text("from trainkit.tasks import *  # noqa\n")  # no config, no data
    for task, option in (("train", "--data=PATH"), ("test", "--stories=PATH")):
        result = doit(tmp_path, task, "--help")
        assert result.returncode == 0, result.stderr + result.stdout
        assert option in result.stdout and "Error" not in result.stdout + result.stderr


def test_doit_train_num_threads_is_the_nodes_blas_thread_count(project):
    (project / "config.yml").write_text(CONFIG.replace("fake_components.FakeClassifier",
                                                       "test_num_threads.BlasThreadsProbe"))
    result = doit(project, "train", "--num-threads", "2", "--fixed-model-name", "two")
    assert result.returncode == 0, result.stderr
    with tarfile.open(project / "models" / "two.tar.gz") as archive:
        name = next(m.name for m in archive.getmembers() if m.name.endswith("threads.json"))
        assert json.loads(archive.extractfile(name).read()) == [2]
