"""Disk full while writing a cache entry or a node's files: one clear error, no debris.

The simulated cases make the copy fail part-way; the tmpfs cases (run as root, in a
private mount namespace) fill a real 256 KiB file system.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trainkit.engine import cache as cache_module
from trainkit.engine.artifact import ArtifactError, ArtifactWriter
from trainkit.engine.cache import Cache, CacheWriteError


def _artifact(root: Path, files: int = 5) -> Path:
    artifact = root / "artifact"
    artifact.mkdir()
    for i in range(files):
        (artifact / f"part{i}.json").write_text("{}" * 1000)
    return artifact


def _debris(cache: Cache) -> list[Path]:
    return [p for p in (cache.root / "tmp").rglob("*")] + [
        p for p in (cache.root / "objects").rglob("*") if p.is_file()
    ]


def test_enospc_while_storing_an_entry_names_it_and_leaves_nothing(tmp_path, monkeypatch):
    cache = Cache(tmp_path / "cache")
    artifact = _artifact(tmp_path)
    real_copy = shutil.copyfile
    copies = []

    def copy_until_full(source, target, *, follow_symlinks=True):
        copies.append(source)
        if len(copies) == 3:
            Path(target).write_bytes(b"{" * 10)  # a partial file, as a full disk leaves
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))
        return real_copy(source, target, follow_symlinks=follow_symlinks)

    monkeypatch.setattr(cache_module.shutil, "copyfile", copy_until_full)
    with pytest.raises(CacheWriteError) as caught:
        cache.put("fp", artifact, node="train_DIETClassifier4")
    message = str(caught.value)
    assert "train_DIETClassifier4" in message and str(cache.root) in message
    assert "No space left on device" in message and "\n" not in message
    assert _debris(cache) == []
    assert cache.lookup("fp") is None


def test_enospc_while_writing_node_files_names_the_file_and_removes_it(tmp_path, monkeypatch):
    writer = ArtifactWriter(tmp_path / "out")

    def full(self, data):
        with open(self, "wb") as handle:
            handle.write(data[:3])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(ArtifactError, match=r"model\.json.*No space left"):
        writer.json("model.json", {"a": 1})
    monkeypatch.undo()
    assert not (tmp_path / "out" / "model.json").exists()


TMPFS_SCRIPT = """
import sys
from pathlib import Path
import numpy as np
from trainkit.engine.artifact import ArtifactError, ArtifactWriter
from trainkit.engine.cache import Cache, CacheWriteError

disk = Path(sys.argv[1])
source = Path(sys.argv[2])
cache = Cache(disk / "cache")
try:
    cache.put("fp", source, node="train_Big0")
    print("stored")
except CacheWriteError as exc:
    print("Error:", exc)
writer = ArtifactWriter(disk / "out")
try:
    writer.arrays("weights.npz", {"w": np.random.default_rng(0).random(200_000)})
    print("written")
except ArtifactError as exc:
    print("Error:", exc)
left = sorted(str(p.relative_to(disk)) for p in disk.rglob("*") if p.is_file())
print("files", left)
"""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root to mount a tmpfs")
def test_a_real_full_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    source = tmp_path / "big"
    source.mkdir()
    rng = np.random.default_rng(1)
    for i in range(4):
        (source / f"chunk{i}.bin").write_bytes(rng.bytes(100_000))
    mount = 'mount -t tmpfs -o size=256k tmpfs "$0" && exec "$@"'
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", mount, str(disk), sys.executable, "-c", TMPFS_SCRIPT, str(disk), str(source)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 2, result.stdout
    assert "train_Big0" in errors[0] and "No space left" in errors[0]
    assert "weights.npz" in errors[1] and "No space left" in errors[1]
    files = lines[-1]
    assert "chunk" not in files and "weights.npz" not in files, files
