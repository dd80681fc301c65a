"""Loading model archives: newest in a directory, version checks, refusing unsafe archives."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from trainkit.engine.archive import write_archive
from trainkit.errors import TrainkitError
from trainkit.model import ModelVersionError, load_model

METADATA = {
    "format_version": 1, "trainkit_version": "0.1.0", "training_type": 1, "model_type": "nlu",
    "predict_schema": {"pipeline": [{"name": "WhitespaceTokenizer0", "component": "WhitespaceTokenizer",
                                     "config": {"intent_tokenization_flag": False, "intent_split_symbol": "_",
                                                "token_pattern": None}, "node": None}],
                       "policies": []},
    "domain": {},
}


def test_loads_and_parses_with_the_stored_pipeline(tmp_path):
    path = write_archive(tmp_path / "m.tar.gz", METADATA, {})
    model = load_model(path)
    assert model.parse("hello there")["text"] == "hello there"
    assert model.parse("/greet")["intent"] == {"name": "greet", "confidence": 1.0}


def test_directory_means_newest_archive(tmp_path):
    import os

    old = write_archive(tmp_path / "a.tar.gz", METADATA, {})
    new = write_archive(tmp_path / "b.tar.gz", {**METADATA, "trainkit_version": "newest"}, {})
    os.utime(old, (1, 1))
    os.utime(new, (2, 2))
    assert load_model(tmp_path).metadata["trainkit_version"] == "newest"


def test_incompatible_format_version_is_a_clear_error(tmp_path):
    path = write_archive(tmp_path / "m.tar.gz", {**METADATA, "format_version": 99}, {})
    with pytest.raises(ModelVersionError, match="Retrain the model"):
        load_model(path)


def test_archive_escaping_its_directory_is_refused(tmp_path):
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        data = json.dumps(METADATA).encode()
        for name in ("metadata.json", "../escaped.txt"):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    with pytest.raises(TrainkitError, match="escaped"):
        load_model(path)
    assert not (tmp_path.parent / "escaped.txt").exists()


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(TrainkitError, match="no model archive"):
        load_model(tmp_path)
    with pytest.raises(TrainkitError, match="does not exist"):
        load_model(Path(tmp_path) / "nope.tar.gz")
