"""Rasa's option habits on the command line: several paths after one flag (`--data a b`,
as argparse's nargs="+"), the repeated flag still working, and `--num-threads`."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import trainkit
from trainkit.cli import main
from trainkit.cli_options import MultiValueGroup, MultiValueOption, spread_values
from trainkit.engine.threads import BLAS_THREADS_ENV
from trainkit.errors import TrainkitError

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "coffeebot"


@pytest.fixture
def bot(tmp_path, monkeypatch):
    target = tmp_path / "bot"
    shutil.copytree(EXAMPLE, target)
    monkeypatch.chdir(target)
    return target


def run(*args):
    return CliRunner().invoke(main, list(args))


def summary(*args) -> dict:
    result = run("data", "summary", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_several_paths_after_one_flag_read_every_file(bot):
    nlu_only = summary("--data", "data/nlu.yml")
    both = summary("--data", "data/nlu.yml", "data/stories.yml")
    assert nlu_only["stories"] == 0 and both["stories"] == 8
    assert both["nlu_examples"] == nlu_only["nlu_examples"] > 0
    assert summary("--data", "data/nlu.yml", "--data", "data/stories.yml") == both
    assert summary("--data", "data/nlu.yml", "data/stories.yml", "--json") == both  # values stop at an option


def test_a_value_after_the_paths_that_names_no_file_is_an_error(bot):
    result = run("data", "summary", "--data", "data/nlu.yml", "no/such.yml")
    assert result.exit_code == 1
    assert "no/such.yml: path does not exist" in result.output


def test_an_attached_value_takes_one_path_as_argparse_does(bot):
    result = run("validate", "--data=data/nlu.yml", "data/stories.yml")
    assert result.exit_code == 2
    assert "unexpected extra argument" in result.output


@pytest.mark.parametrize("command, option", [
    (["train"], "--data"), (["train", "nlu"], "--nlu"), (["train", "core"], "--stories"), (["status"], "--data"),
    (["validate"], "--data"), (["data", "summary"], "--data"), (["test"], "--stories"), (["test"], "--nlu"),
    (["test", "core"], "--stories"), (["test", "nlu"], "--nlu"),
])
def test_every_path_option_takes_several_values(command, option):
    help_text = run(*command, "--help").output
    line = next(line for line in help_text.splitlines() if option in line)
    assert "PATH..." in line, help_text


@pytest.mark.parametrize("args, api, expected", [
    (["train", "--data", "a.yml", "b.yml", "--out", "dist"], "train", ["a.yml", "b.yml"]),
    (["train", "nlu", "-u", "a.yml", "b.yml", "--nlu", "c.yml"], "train_nlu", ["a.yml", "b.yml", "c.yml"]),
    (["train", "core", "--stories", "s.yml", "r.yml"], "train_core", ["s.yml", "r.yml"]),
])
def test_train_commands_pass_every_path_to_the_api(monkeypatch, tmp_path, args, api, expected):
    monkeypatch.chdir(tmp_path)
    calls = []

    def record(*positional, **keywords):
        calls.append((positional, keywords))
        return trainkit.TrainingResult(None, 0)

    monkeypatch.setattr(trainkit, api, record)
    result = run(*args)
    assert result.exit_code == 0, result.output
    (positional, keywords), = calls
    assert [p for p in positional if isinstance(p, list)] == [expected]


def test_test_commands_pass_every_path(monkeypatch, tmp_path):
    from trainkit.evaluation import project_test

    monkeypatch.chdir(tmp_path)
    seen = {}

    def record_run(model, stories, nlu, out, e2e, plot):
        seen.update(stories=list(stories), nlu=list(nlu))
        raise TrainkitError("recorded")

    monkeypatch.setattr(project_test, "run_tests", record_run)
    result = run("test", "--stories", "t1.yml", "t2.yml", "--nlu", "n1.yml", "n2.yml", "--e2e")
    assert result.exit_code == 1 and "recorded" in result.output
    assert seen == {"stories": ["t1.yml", "t2.yml"], "nlu": ["n1.yml", "n2.yml"]}


def test_values_of_a_group_option_stop_at_its_subcommand():
    @click.group(cls=MultiValueGroup, invoke_without_command=True)
    @click.option("--data", cls=MultiValueOption)
    @click.pass_context
    def group(ctx, data):
        ctx.obj = list(data)

    @group.command("sub")
    @click.option("--other", cls=MultiValueOption)
    @click.pass_context
    def sub(ctx, other):
        click.echo(json.dumps({"data": ctx.parent.obj, "other": list(other)}))

    result = CliRunner().invoke(group, ["--data", "a", "b", "sub", "--other", "c", "d"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"data": ["a", "b"], "other": ["c", "d"]}


@pytest.mark.parametrize("args, expected", [
    (["--data", "a", "b", "--out", "x"], ["--data", "a", "--data", "b", "--out", "x"]),
    (["--data", "a", "--", "b"], ["--data", "a", "--", "b"]),
    (["--out", "--data", "--data", "a"], ["--out", "--data", "--data", "a"]),  # a value is never a flag
    (["--data", "-", "b"], ["--data", "-", "--data", "b"]),  # "-" is a value (stdin), not an option
    (["--data=a", "b"], ["--data=a", "b"]),
    (["-u", "a", "b"], ["-u", "a", "-u", "b"]),
    (["--finetune", "--data", "a", "b"], ["--finetune", "--data", "a", "--data", "b"]),  # an optional value
    (["--finetune", "m", "--data", "a", "b"], ["--finetune", "m", "--data", "a", "--data", "b"]),
])
def test_spreading_the_arguments(args, expected):
    assert spread_values(args, multi={"--data", "-u"}, valued={"--out"}, commands=set()) == expected


def test_finetune_without_a_path_before_several_data_paths(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    calls = []

    def record(*positional, **keywords):
        calls.append((positional, keywords))
        return trainkit.TrainingResult(None, 0)

    monkeypatch.setattr(trainkit, "train", record)
    result = run("train", "--finetune", "--data", "a.yml", "b.yml", "--epoch-fraction", "0.5")
    assert result.exit_code == 0, result.output
    (positional, keywords), = calls
    assert positional[2] == ["a.yml", "b.yml"]
    assert keywords["model_to_finetune"] == "" and keywords["finetuning_epoch_fraction"] == 0.5
    assert run("train", "--finetune", "--epoch-fraction", "0").exit_code == 2


def test_num_threads_sets_the_blas_threads_of_the_build(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(BLAS_THREADS_ENV, raising=False)
    seen = []

    def record(*positional, **keywords):
        seen.append(os.environ.get(BLAS_THREADS_ENV))
        return trainkit.TrainingResult(None, 0)

    monkeypatch.setattr(trainkit, "train", record)
    monkeypatch.setattr(trainkit, "train_nlu", record)
    assert run("train", "--num-threads", "2").exit_code == 0
    assert run("train", "nlu", "--num-threads", "3").exit_code == 0
    assert seen == ["2", "3"]


def test_num_threads_must_be_a_positive_count(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("train", "--num-threads", "0")
    assert result.exit_code == 2
    assert "--num-threads" in result.output and "Traceback" not in result.output


def test_num_threads_caps_the_parallel_jobs(monkeypatch):
    from trainkit.engine import threads

    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    monkeypatch.setenv(BLAS_THREADS_ENV, "1")
    assert threads.parallel_workers(-1, 10) == 4
    threads.set_blas_threads(2)
    assert os.environ[BLAS_THREADS_ENV] == "2"
    assert threads.parallel_workers(-1, 10) == 2 and threads.parallel_workers(8, 10) == 2
