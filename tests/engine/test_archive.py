import io
import json
import os
import random
import re
import tarfile
import time
from datetime import datetime
from pathlib import Path

import pytest

from trainkit.engine.archive import (
    extract_archive,
    latest_model,
    model_file_name,
    read_metadata,
    write_archive,
)
from trainkit.engine.fingerprint import digest_dir
from trainkit.errors import TrainkitError


@pytest.mark.parametrize(
    ("fixed", "expected"),
    [
        ("foo", "foo.tar.gz"),
        ("foo.bar", "foo.tar.gz"),
        ("my.model.v2", "my.model.tar.gz"),
        ("sub/dir/name", "name.tar.gz"),
        ("x.tgz", "x.tar.gz"),
        ("model.tar.gz", "model.tar.gz"),
        ("sub/dir/x.tar.gz", "sub/dir/x.tar.gz"),
    ],
)
def test_fixed_model_names(fixed, expected):
    assert model_file_name(fixed) == expected
    assert model_file_name(fixed, prefix="nlu-") == expected


def test_generated_model_name():
    now = datetime(2024, 3, 5, 14, 7, 9)
    name = model_file_name(None, now=now, rng=random.Random(1))
    assert re.fullmatch(r"20240305-140709-[a-z]+-[a-z]+\.tar\.gz", name)
    assert name == model_file_name(None, now=now, rng=random.Random(1))
    assert model_file_name("", prefix="core-", now=now).startswith("core-20240305-140709-")
    names = {model_file_name(None, now=now, rng=random.Random(seed)) for seed in range(50)}
    assert len(names) > 40


def test_generated_name_uses_local_time():
    name = model_file_name(None)
    stamp = datetime.strptime(name[:15], "%Y%m%d-%H%M%S")
    assert abs((datetime.now() - stamp).total_seconds()) < 60


def _components(root: Path) -> dict[str, Path]:
    tok = root / "tok"
    (tok / "inner").mkdir(parents=True)
    (tok / "meta.json").write_text('{"a": 1}')
    (tok / "inner" / "vocab.json").write_text('["é", "b"]', encoding="utf-8")
    (tok / "empty").mkdir()
    clf = root / "clf"
    clf.mkdir()
    (clf / "weights.npz").write_bytes(os.urandom(2048))
    return {"train_tok": tok, "train_clf": clf}


def test_round_trip(tmp_path):
    components = _components(tmp_path / "src")
    metadata = {"trainkit_version": "0.1.0", "language": "de", "note": "grüße"}
    archive = tmp_path / "models" / "nested" / "m.tar.gz"
    assert write_archive(archive, metadata, components) == archive
    assert archive.is_file()
    assert [p.name for p in archive.parent.iterdir()] == ["m.tar.gz"]

    assert read_metadata(archive) == metadata
    target = extract_archive(archive, tmp_path / "unpacked")
    assert json.loads((target / "metadata.json").read_text(encoding="utf-8")) == metadata
    assert "grüße" in (target / "metadata.json").read_text(encoding="utf-8")
    for node, source in components.items():
        assert digest_dir(target / "components" / node) == digest_dir(source)

    with tarfile.open(archive) as tar:
        names = tar.getnames()
        assert names[0] == "metadata.json"
        assert names == ["metadata.json"] + sorted(names[1:])
        for member in tar.getmembers():
            assert member.mtime == 0
            assert member.uid == member.gid == 0
            assert member.uname == member.gname == ""


def test_archives_are_deterministic(tmp_path):
    components = _components(tmp_path / "src")
    metadata = {"b": 1, "a": [1, 2]}
    first = write_archive(tmp_path / "one.tar.gz", metadata, components)
    time.sleep(1.1)
    for path in (tmp_path / "src").rglob("*"):
        os.utime(path, (12345, 12345))
    reordered = dict(reversed(list(components.items())))
    second = write_archive(tmp_path / "other" / "two.tar.gz", {"a": [1, 2], "b": 1}, reordered)
    assert first.read_bytes() == second.read_bytes()


def test_write_replaces_existing_archive_atomically(tmp_path):
    components = _components(tmp_path / "src")
    archive = tmp_path / "m.tar.gz"
    archive.write_text("old")
    write_archive(archive, {"v": 2}, components)
    assert read_metadata(archive) == {"v": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tar.gz", "src"]


def test_write_rejects_bad_node_names(tmp_path):
    components = _components(tmp_path / "src")
    with pytest.raises(ValueError):
        write_archive(tmp_path / "m.tar.gz", {}, {"../evil": components["train_tok"]})
    assert not (tmp_path / "m.tar.gz").exists()


def _malicious(path: Path, *members: tarfile.TarInfo) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("metadata.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
        for member in members:
            payload = b"evil" if member.isfile() else b""
            member.size = len(payload)
            tar.addfile(member, io.BytesIO(payload) if payload else None)
    return path


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


@pytest.mark.parametrize(
    ("member", "needle"),
    [
        (tarfile.TarInfo("../escape.txt"), "'..'"),
        (tarfile.TarInfo("components/x/../../../escape.txt"), "'..'"),
        (tarfile.TarInfo("/tmp/absolute-escape.txt"), "absolute"),
        (_link("components/link", "/etc/passwd", tarfile.SYMTYPE), "symbolic link"),
        (_link("components/hard", "metadata.json", tarfile.LNKTYPE), "hard link"),
        (_link("components/dev", "", tarfile.CHRTYPE), "device"),
    ],
)
def test_malicious_archives_are_refused(tmp_path, member, needle):
    archive = _malicious(tmp_path / "bad.tar.gz", member)
    target = tmp_path / "deep" / "target"
    with pytest.raises(TrainkitError, match=re.escape(needle)) as caught:
        extract_archive(archive, target)
    assert repr(member.name) in str(caught.value)
    assert list(target.iterdir()) == []  # checked before anything was written
    assert not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "deep" / "escape.txt").exists()


def test_corrupt_and_foreign_archives(tmp_path):
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"not a tarball")
    with pytest.raises(TrainkitError):
        read_metadata(broken)
    with pytest.raises(TrainkitError):
        extract_archive(broken, tmp_path / "out")

    foreign = tmp_path / "foreign.tar.gz"
    with tarfile.open(foreign, "w:gz") as tar:
        info = tarfile.TarInfo("readme.txt")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(TrainkitError, match="metadata.json"):
        read_metadata(foreign)


def test_latest_model(tmp_path):
    assert latest_model(tmp_path / "missing") is None
    assert latest_model(tmp_path) is None
    names = ["a.tar.gz", "b.tar.gz", "c.tar.gz"]
    for offset, name in zip([300, 100, 200], names, strict=True):
        path = tmp_path / name
        path.write_bytes(b"x")
        os.utime(path, (1_700_000_000 + offset, 1_700_000_000 + offset))
    (tmp_path / "newer.zip").write_bytes(b"x")
    assert latest_model(tmp_path) == tmp_path / "a.tar.gz"
