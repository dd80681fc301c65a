"""The plan memo answers a no-op build without parsing the project, and never answers
when anything the planner looks at has changed."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import fake_components
import pytest
from fake_components import CONFIG, NLU, train

import trainkit
from trainkit.data import importer
from trainkit.engine import code_identity, memo
from trainkit.engine.cache import Cache

sys.modules.setdefault("fake_components", fake_components)







@pytest.fixture
def parsing(monkeypatch):
    """Counts how often the project files are parsed (the planner's path, not the memo's)."""
    calls = []
    original = importer.load_project_paths

    def counting(paths):
        calls.append(paths)
        return original(paths)

    monkeypatch.setattr(importer, "load_project_paths", counting)
    return calls


def test_a_no_op_build_and_dry_run_parse_nothing(project, parsing):
    first = train()
    parsed = len(parsing)
    assert parsed >= 1
    assert train().model == first.model
    dry = train(dry_run=True)
    assert len(parsing) == parsed
    assert dry.code == 0 and dry.dry_run_results["package"]["status"] == "up to date"
    assert set(dry.dry_run_results) == set(trainkit.train(None, "config.yml", "data", dry_run=True,
                                                          force_training=True).dry_run_results)


def test_the_memo_answers_as_the_planner_would(project):
    train()
    remembered = train(dry_run=True).dry_run_results
    (project / ".trainkit" / memo.MEMO_FILE).unlink()
    assert train(dry_run=True).dry_run_results == remembered


@pytest.mark.parametrize("change", [
    "comment", "config", "delete_models", "touch_model", "truncate_model", "cache_cleared",
    "library_version", "declared_version", "trainkit_source", "other_output",
])
def test_any_change_falls_through_to_the_planner(project, parsing, monkeypatch, tmp_path, change):
    model = Path(train().model)
    calls = len(parsing)
    kwargs = {}
    if change == "comment":
        (project / "data" / "nlu.yml").write_text("# just a comment\n" + NLU)
    elif change == "config":
        (project / "config.yml").write_text(CONFIG.format(epochs=2))
    elif change == "delete_models":
        shutil.rmtree(project / "models")
    elif change == "touch_model":
        os.utime(model, None)
    elif change == "truncate_model":
        model.write_bytes(model.read_bytes()[:100])
    elif change == "cache_cleared":
        Cache.for_project(project).clear()
    elif change == "library_version":
        real = code_identity.distribution_version
        monkeypatch.setattr(memo, "distribution_version",
                            lambda name: "0-other" if name == "numpy" else real(name))
        monkeypatch.setitem(code_identity._VERSION_MEMO, "numpy", "0-other")
    elif change == "declared_version":
        monkeypatch.setattr(fake_components.FakeClassifier, "version", "9")
    elif change == "trainkit_source":
        extra = tmp_path / "extra.py"
        extra.write_text("X = 1\n")
        real_sources = memo._trainkit_sources
        monkeypatch.setattr(memo, "_trainkit_sources", lambda: [*real_sources(), extra])
        train()  # remembered with the extra file as it is now
        calls = len(parsing)
        extra.write_text("X = 2\n")
    elif change == "other_output":
        kwargs = {"output": "elsewhere"}
    train(**kwargs)
    assert len(parsing) > calls, f"{change}: the memo answered"


def test_warnings_of_the_project_are_shown_again_on_a_memo_hit(project, parsing):
    (project / "config.yml").write_text(CONFIG.format(epochs=1) + "    no_such_option: 3\n")
    with pytest.warns(UserWarning, match="unknown option 'no_such_option'"):
        train()
    parsed = len(parsing)
    with pytest.warns(UserWarning, match="unknown option 'no_such_option'"):
        train()
    assert len(parsing) == parsed


def test_a_damaged_memo_file_is_ignored(project, parsing):
    train()
    parsed = len(parsing)
    (project / ".trainkit" / memo.MEMO_FILE).write_text("{not json")
    train()
    assert len(parsing) > parsed
