"""The training engine end to end on a small NLU project with simple components:
caching, early cutoff, reasons for staleness, forced runs, parallel runs, packaging."""

from __future__ import annotations

import json
import shutil
import sys
import tarfile
from pathlib import Path

import fake_components
import pytest
from fake_components import CONFIG, NLU, train

from trainkit.engine.archive import read_metadata
from trainkit.errors import ConfigError, GraphError
from trainkit.training import CODE_FORCED_TRAINING, CODE_NEEDS_TO_BE_RETRAINED

sys.modules.setdefault("fake_components", fake_components)








def dry():
    result = train(dry_run=True)
    stale = {name: r["reason"] for name, r in result.dry_run_results.items() if r["status"] != "up to date"}
    return result.code, stale


def trained_nodes(caplog):
    """Nodes the most recent training run trained (from its log line)."""
    for record in reversed(caplog.records):
        if record.getMessage().startswith("Trained "):
            return record.getMessage().split(": ", 1)[1].split(", ")
    return []


def test_first_build_trains_everything_and_packages(project, caplog):
    caplog.set_level("INFO", logger="trainkit")
    result = train()
    assert result.code == 0 and Path(result.model).is_file()
    assert Path(result.model).name.startswith("nlu-")
    assert trained_nodes(caplog) == [
        "run_FakeTokenizer0", "train_FakeFeaturizer1", "run_FakeFeaturizer1", "train_FakeClassifier2"
    ]
    metadata = read_metadata(Path(result.model))
    assert metadata["training_type"] == 1 and metadata["language"] == "en"
    with tarfile.open(result.model) as archive:
        names = archive.getnames()
    assert "components/train_FakeClassifier2/model.json" in names


def test_no_change_trains_nothing_but_still_produces_a_model(project, caplog):
    train()
    caplog.clear()
    caplog.set_level("INFO", logger="trainkit")
    second = train()
    assert trained_nodes(caplog) == []
    assert "Nothing to train" in caplog.text
    assert Path(second.model).is_file()
    assert dry() == (0, {})


def test_whitespace_and_comment_edits_retrain_nothing(project):
    train()
    edited = "# a comment\n" + NLU.replace("- intent: bye", "\n- intent:   bye")
    (project / "data" / "nlu.yml").write_text(edited)
    assert dry() == (0, {})


def test_added_example_retrains_the_nlu_chain_with_reasons(project):
    train()
    (project / "data" / "nlu.yml").write_text(NLU + "    - see you later\n")
    code, stale = dry()
    assert code == CODE_NEEDS_TO_BE_RETRAINED
    assert stale["run_FakeTokenizer0"] == "upstream output changed: nlu_training_data_provider"
    assert "train_FakeClassifier2" in stale


def test_config_change_names_the_key_and_a_to_b_to_a_is_free(project, caplog):
    train()
    (project / "config.yml").write_text(CONFIG.format(epochs=5))
    code, stale = dry()
    assert stale == {"train_FakeClassifier2": "config changed: epochs", "package": "waits for: train_FakeClassifier2"}
    train()
    (project / "config.yml").write_text(CONFIG.format(epochs=1))
    caplog.set_level("INFO", logger="trainkit")
    caplog.clear()
    train()
    assert trained_nodes(caplog) == []


def test_nested_config_values_hit_the_cache(project, caplog):
    (project / "config.yml").write_text(CONFIG.format(epochs=1) + "    layers:\n      text: [16]\n")
    train()
    assert dry() == (0, {})


def test_component_version_bump_invalidates_it_and_changed_downstream_only(project, monkeypatch):
    train()
    monkeypatch.setattr(fake_components.FakeClassifier, "version", "2")
    code, stale = dry()
    assert stale == {"train_FakeClassifier2": "component version changed (1 -> 2)",
                     "package": "waits for: train_FakeClassifier2"}
    monkeypatch.setattr(fake_components.FakeClassifier, "version", "1")
    train()
    # A featurizer whose new version produces identical output does not retrain the classifier.
    monkeypatch.setattr(fake_components.FakeFeaturizer, "version", "7")
    code, stale = dry()
    assert set(stale) == {"train_FakeFeaturizer1", "run_FakeFeaturizer1", "train_FakeClassifier2", "package"}
    assert stale["run_FakeFeaturizer1"].startswith("upstream stale") or "version" in stale["run_FakeFeaturizer1"]
    train()
    assert dry() == (0, {})


def test_early_cutoff_after_version_bump_with_identical_output(project, monkeypatch, caplog):
    train()
    monkeypatch.setattr(fake_components.FakeTokenizer, "version", "2")
    caplog.set_level("INFO", logger="trainkit")
    caplog.clear()
    train()
    # The tokenizer reran, produced the same tokens: nothing downstream retrains.
    assert trained_nodes(caplog) == ["run_FakeTokenizer0"]


def test_force_retrains_everything_and_dry_run_says_forced(project, caplog):
    train()
    assert train(dry_run=True, force_training=True).code == CODE_FORCED_TRAINING
    caplog.set_level("INFO", logger="trainkit")
    caplog.clear()
    train(force_training=True)
    assert len(trained_nodes(caplog)) == 4


def test_parallel_and_sequential_builds_write_identical_components(project, tmp_path_factory):
    sequential = Path(train(fixed_model_name="seq").model)
    shutil.rmtree(project / ".trainkit")
    parallel = Path(train(fixed_model_name="par", n_jobs=2).model)

    def members(path):
        with tarfile.open(path) as archive:
            return {
                m.name: archive.extractfile(m).read()
                for m in archive.getmembers()
                if m.isfile() and m.name.startswith("components/")
            }

    assert members(sequential) == members(parallel)


def test_fixed_model_name_is_reused_when_nothing_changed(project):
    first = Path(train(fixed_model_name="bot").model)
    assert first.name == "bot.tar.gz"
    stamp = first.stat().st_mtime_ns
    second = Path(train(fixed_model_name="bot").model)
    assert second == first and second.stat().st_mtime_ns == stamp


def test_damaged_cache_entry_is_a_miss_not_a_crash(project):
    train()
    objects = project / ".trainkit" / "cache" / "objects"
    victim = next(p for p in objects.rglob("model.json"))
    victim.write_text("{}")
    # The archive is intact, so a no-op reads nothing from the cache; repackaging must.
    shutil.rmtree(project / "models")
    with pytest.warns(UserWarning):
        result = train()
    assert Path(result.model).is_file()
    assert dry() == (0, {})


def test_failed_component_leaves_nothing_trusted(project):
    (project / "config.yml").write_text(CONFIG.format(epochs=1).replace(
        "fake_components.FakeClassifier\n    epochs: 1", "fake_components.ExplodingClassifier"))
    with pytest.raises(fake_components.Failing):
        train()
    code, stale = dry()
    assert "train_ExplodingClassifier2" in stale and code == CODE_NEEDS_TO_BE_RETRAINED


def test_featurizer_without_tokenizer_is_a_graph_error_naming_the_node(project):
    (project / "config.yml").write_text("pipeline:\n  - name: fake_components.FakeFeaturizer\npolicies: []\n")
    with pytest.raises(GraphError, match="config.yml:2: node 'FakeFeaturizer0'.*needs a tokenizer"):
        train()


def test_unknown_component_names_file_and_line(project):
    (project / "config.yml").write_text("pipeline:\n  - name: WhitespaceTokenizer\n  - name: NoSuchThing\n")
    with pytest.raises(ConfigError, match=r"config.yml:3: .*unknown component 'NoSuchThing'"):
        train()


def test_dry_run_results_are_json(project):
    train()
    json.dumps(train(dry_run=True).dry_run_results)


def test_a_copy_of_the_project_elsewhere_shares_the_cache(project, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINKIT_CACHE_DIR", str(tmp_path / "shared-cache"))
    train()
    clone = tmp_path / "elsewhere" / "clone"
    shutil.copytree(project, clone, ignore=shutil.ignore_patterns(".trainkit", "models"))
    monkeypatch.chdir(clone)
    code, stale = dry()
    assert code == CODE_NEEDS_TO_BE_RETRAINED and set(stale) == {"package"}  # only the archive is missing
    assert stale["package"].startswith("no model in")


def test_persisted_nlu_training_data_is_packaged(project):
    model = Path(train(persist_nlu_training_data=True).model)
    with tarfile.open(model) as archive:
        assert "components/nlu_training_data_provider/training_data.json" in archive.getnames()
    with tarfile.open(train().model) as archive:
        assert "components/nlu_training_data_provider/training_data.json" not in archive.getnames()


def test_finetuning_without_a_model_is_a_clear_error(project):
    from trainkit.errors import TrainkitError

    with pytest.raises(TrainkitError, match="cannot finetune: .*models.* does not exist"):
        train(model_to_finetune="models")
