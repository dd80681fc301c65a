"""The package step is a build step like the others: up to date when the archive that
`load_model(out)` would open carries the package fingerprint and is intact, rewritten
exactly when something the archive holds changed."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import fake_components
import pytest
from fake_components import NLU

import trainkit
from trainkit.engine.archive import latest_model, read_metadata, remove_leftovers, scan_archive

sys.modules.setdefault("fake_components", fake_components)

CONFIG = """\
language: en
assistant_id: {assistant}
pipeline:
  - name: fake_components.FakeTokenizer
  - name: fake_components.FakeFeaturizer
  - name: fake_components.FakeClassifier
    epochs: {epochs}
  - name: FallbackClassifier
    threshold: {threshold}
"""


def write_config(root: Path, epochs: int = 1, threshold: float = 0.3, assistant: str = "bot-a") -> None:
    (root / "config.yml").write_text(CONFIG.format(epochs=epochs, threshold=threshold, assistant=assistant))


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRAINKIT_CACHE_DIR", raising=False)
    monkeypatch.delenv("TRAINKIT_CACHE_MAX_SIZE", raising=False)
    write_config(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "nlu.yml").write_text(NLU)
    return tmp_path


def train(**kwargs):
    return trainkit.train(None, "config.yml", "data", **kwargs)


def archives(project: Path) -> list[Path]:
    return sorted((project / "models").glob("*.tar.gz"))


def threshold(path: Path) -> float:
    """The fallback threshold the archive's prediction schema holds."""
    return read_metadata(path)["predict_schema"]["pipeline"][-1]["config"]["threshold"]


def package_reason(**kwargs) -> tuple[str, str]:
    result = train(dry_run=True, **kwargs).dry_run_results["package"]
    return result["status"], result["reason"]


def test_no_op_builds_write_nothing_and_name_the_current_model(project):
    first = train()
    stamp = Path(first.model).stat().st_mtime_ns
    for _ in range(3):
        again = train()
        assert again.model == first.model
    assert archives(project) == [Path(first.model).absolute()]
    assert Path(first.model).stat().st_mtime_ns == stamp
    assert package_reason() == ("up to date", f"current: {Path(first.model).absolute()}")


def test_a_to_b_to_a_writes_a_new_newest_archive_holding_a(project):
    a = read_metadata(Path(train().model))
    write_config(project, epochs=4)
    b = read_metadata(Path(train().model))
    write_config(project, epochs=1)
    status, reason = package_reason()
    assert status == "stale" and "out of date" in reason and "train_FakeClassifier2" in reason
    third = train()
    assert len(archives(project)) == 3
    assert latest_model(project / "models") == Path(third.model).absolute()
    assert read_metadata(latest_model(project / "models"))["components"] == a["components"] != b["components"]


def test_deleting_the_models_repackages_from_the_cache_without_training(project, caplog):
    train()
    for path in archives(project):
        path.unlink()
    assert package_reason()[1].startswith("no model in")
    caplog.set_level("INFO", logger="trainkit")
    result = train()
    assert "Nothing to train" in caplog.text and "Model saved" in caplog.text
    assert Path(result.model).is_file() and len(archives(project)) == 1


def test_force_always_writes(project):
    train()
    train(force_training=True)
    assert len(archives(project)) == 2


def test_fixed_name_is_rewritten_when_a_prediction_time_setting_changes(project):
    path = Path(train(fixed_model_name="bot").model)
    assert threshold(path) == 0.3
    write_config(project, threshold=0.7)
    status, reason = package_reason(fixed_model_name="bot")
    assert status == "stale" and "predict_schema" in reason
    assert train(fixed_model_name="bot").model == str(path)
    assert threshold(path) == 0.7
    assert archives(project) == [path.absolute()]


def test_fixed_name_is_rewritten_when_the_assistant_id_changes(project):
    path = Path(train(fixed_model_name="bot").model)
    write_config(project, assistant="bot-b")
    assert "assistant_id" in package_reason(fixed_model_name="bot")[1]
    train(fixed_model_name="bot")
    assert read_metadata(path)["assistant_id"] == "bot-b"


def test_a_truncated_fixed_name_archive_is_rebuilt(project):
    path = Path(train(fixed_model_name="bot").model)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    status, reason = package_reason(fixed_model_name="bot")
    assert status == "stale" and "unreadable" in reason
    train(fixed_model_name="bot")
    scan_archive(path)  # intact again
    assert path.read_bytes() != data[: len(data) // 2]


def test_a_corrupted_newest_archive_is_not_trusted(project):
    path = Path(train().model)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one flipped byte inside the compressed stream
    path.write_bytes(bytes(data))
    assert package_reason()[0] == "stale"
    newest = Path(train().model)
    assert newest != path and scan_archive(newest).metadata["components"]


def test_an_archive_whose_component_bytes_differ_from_the_cache_is_rebuilt(project):
    path = Path(train(fixed_model_name="bot").model)
    metadata = read_metadata(path)
    # Rewrite the archive with the same metadata but one component file changed.
    from trainkit.engine.archive import write_archive

    staging = project / "staging"
    (staging / "train_FakeClassifier2").mkdir(parents=True)
    (staging / "train_FakeClassifier2" / "model.json").write_text("{}")
    write_archive(path, metadata, {"train_FakeClassifier2": staging / "train_FakeClassifier2"})
    status, reason = package_reason(fixed_model_name="bot")
    assert status == "stale" and "damaged" in reason and "train_FakeClassifier2" in reason


def test_temp_files_of_killed_writers_are_removed_and_live_ones_kept(project):
    train()
    models = project / "models"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        leftover = models / f".m.tar.gz.{dead.pid}.{'a' * 32}.tmp"
        in_progress = models / f".m.tar.gz.{alive.pid}.{'b' * 32}.tmp"
        old_style = models / f".m.tar.gz.{'c' * 32}.tmp"
        for path in (leftover, in_progress, old_style):
            path.write_bytes(b"partial")
        os.utime(old_style, (1, 1))
        unrelated = models / ".notes.tmp"
        unrelated.write_text("mine")
        train()  # a no-op build still tidies up after killed runs
        assert not leftover.exists() and not old_style.exists()
        assert in_progress.exists() and unrelated.exists()
    finally:
        alive.kill()
        alive.wait()
    assert remove_leftovers(models) == [in_progress]


def test_scan_archive_reports_truncation_as_damage(project, tmp_path):
    path = Path(train().model)
    raw = gzip.decompress(path.read_bytes())
    truncated = tmp_path / "t.tar.gz"
    truncated.write_bytes(gzip.compress(raw[: len(raw) // 3]))
    with pytest.raises(trainkit.errors.TrainkitError, match="damaged|not a trainkit model"):
        scan_archive(truncated)
