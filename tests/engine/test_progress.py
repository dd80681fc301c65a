"""Progress output: plain lines when not a terminal, a redrawn bar in one, none with --quiet."""

from __future__ import annotations

import io
import re

from click.testing import CliRunner

from trainkit.cli import main
from trainkit.engine import progress

REAL = """\
language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
  - name: DIETClassifier
    epochs: 20
"""


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_plain_lines_show_epochs_and_finished_nodes(project):
    (project / "config.yml").write_text(REAL)
    result = CliRunner().invoke(main, ["train", "nlu"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    diet = [line for line in lines if line.startswith("train_DIETClassifier")]
    assert [re.sub(r", loss .*", "", line) for line in diet[:-1]] == [
        f"train_DIETClassifier2: epoch {e}/20" for e in range(2, 21, 2)]
    assert re.fullmatch(r"train_DIETClassifier2: done in \d+\.\ds", diet[-1])
    assert any(re.fullmatch(r"train_CountVectorsFeaturizer1: done in \d+\.\ds", line) for line in lines)
    assert "\r" not in result.output


def test_quiet_prints_only_the_model(project):
    (project / "config.yml").write_text(REAL)
    result = CliRunner().invoke(main, ["train", "nlu", "--quiet"])
    assert result.exit_code == 0, result.output
    assert [line for line in result.output.splitlines() if line.strip()] == [
        line for line in result.output.splitlines() if line.startswith("Model: ")]


def test_a_terminal_gets_one_redrawn_line_per_node():
    stream = _Terminal()
    reporter = progress.for_stream(stream)
    assert isinstance(reporter, progress.TerminalProgress)
    with progress.reporting(reporter), progress.node("train_DIETClassifier5"):
        for epoch in range(1, 11):
            progress.report_epoch(epoch, 10, 1.0 / epoch)
    text = stream.getvalue()
    assert "\r\x1b[2K" in text
    assert "[########################] 10/10  loss 0.1000" in text
    assert text.endswith("\n") and "train_DIETClassifier5  done in" in text.splitlines()[-1]


def test_epochs_outside_a_reporting_build_say_nothing(capsys):
    progress.report_epoch(1, 10, 0.5)
    with progress.node("alone"):
        progress.report_epoch(2, 10, 0.5)
    assert capsys.readouterr().err == ""


def test_nodes_run_in_worker_processes_are_announced(project):
    import trainkit

    stream = io.StringIO()
    with progress.reporting(progress.PlainProgress(stream)):
        trainkit.train(None, "config.yml", "data", n_jobs=2)
    done = {line.split(":")[0] for line in stream.getvalue().splitlines() if "done in" in line}
    assert {"train_FakeFeaturizer1", "train_FakeClassifier2"} <= done
