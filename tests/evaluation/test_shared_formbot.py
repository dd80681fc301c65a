"""`trainkit test core` on Rasa's formbot example, with its own config: every action of
its test stories right, as with Rasa 3.6."""

from __future__ import annotations

import json
import shutil
import warnings

from click.testing import CliRunner

import trainkit
from trainkit.cli import main


def test_formbot_test_core_prints_29_of_29(shared_datasets, tmp_path, monkeypatch):
    source = shared_datasets / "rasa-examples" / "formbot"
    for part in ("data", "tests"):
        shutil.copytree(source / part, tmp_path / part)
    for name in ("domain.yml", "config.yml"):
        shutil.copy(source / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert trainkit.train_core("domain.yml", "config.yml", "data").code == 0
    result = CliRunner().invoke(main, ["test", "core"])
    assert result.exit_code == 0, result.output
    assert "Correct: 29 / 29" in result.output and "Correct: 3 / 3" in result.output
    report = json.loads((tmp_path / "results" / "story_report.json").read_text())
    assert report["conversation_accuracy"] == {"accuracy": 1.0, "correct": 3, "with_warnings": 0, "total": 3}
    assert (tmp_path / "results" / "failed_test_stories.yml").read_text().startswith("# None of the test stories")
