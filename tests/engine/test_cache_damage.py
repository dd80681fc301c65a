"""A damaged or read-only cache: warn and rebuild, or serve reads without writing.

Caches live on shared disks and outlive the processes that wrote them, so the index can
be damaged (garbage over its header, cut short) and a directory can be mounted
read-only. Neither may end in a `sqlite3` traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import trainkit
from trainkit.engine.cache import Cache, CacheWarning, CacheWriteError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "coffeebot"

FAST_CONFIG = """\
recipe: default.v1
language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
  - name: LogisticRegressionClassifier
    C: {C}
policies:
  - name: MemoizationPolicy
  - name: RulePolicy
"""


def _filled(root: Path, count: int = 20) -> tuple[Cache, dict[str, str]]:
    cache = Cache(root / "cache")
    digests = {}
    for i in range(count):
        artifact = root / f"a{i}"
        artifact.mkdir()
        (artifact / "data.json").write_text(f'{{"i": {i}}}')
        digests[f"fp{i}"] = cache.put(f"fp{i}", artifact, node=f"node{i}")
    return cache, digests


def _close(cache: Cache) -> None:
    cache._close_connections()
    index = cache.root / "index.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)


def _damage(cache: Cache, how: str) -> None:
    _close(cache)
    index = cache.root / "index.sqlite"
    data = index.read_bytes()
    if how == "garbage header":
        index.write_bytes(b"this is not sqlite" * 8 + data[144:])
    elif how == "truncated":
        index.write_bytes(data[: len(data) // 2])
    elif how == "header only":
        index.write_bytes(data[:100])


@pytest.mark.parametrize("how", ["garbage header", "truncated", "header only"])
def test_a_damaged_index_is_rebuilt_from_the_stored_objects(tmp_path, how):
    cache, digests = _filled(tmp_path)
    _damage(cache, how)
    with pytest.warns(CacheWarning, match="index") as caught:
        reopened = Cache(tmp_path / "cache")
        stats = reopened.stats()
        reopened.lookup("fp1")
        reopened.stats()
    assert len([w for w in caught if issubclass(w.category, CacheWarning)]) == 1
    assert stats["objects"] == len(set(digests.values()))
    assert reopened.path_of(digests["fp3"]) is not None
    artifact = tmp_path / "new"
    artifact.mkdir()
    (artifact / "data.json").write_text("{}")
    digest = reopened.put("fresh", artifact)
    assert reopened.lookup("fresh") == digest


def test_an_index_damaged_while_open_is_rebuilt_on_the_next_use(tmp_path):
    cache, digests = _filled(tmp_path)
    _damage(cache, "garbage header")
    with pytest.warns(CacheWarning, match="index"):
        assert cache.lookup("fp0") is None
    assert cache.path_of(digests["fp0"]) is not None


def test_a_damaged_index_does_not_stop_a_build(tmp_path, monkeypatch):
    project = _project(tmp_path)
    monkeypatch.setenv("TRAINKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(project)
    assert trainkit.train("domain.yml", "config.yml", "data").code == 0
    index = tmp_path / "cache" / "index.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    index.write_bytes(b"\0garbage" * 512)
    with pytest.warns(CacheWarning, match="index"):
        assert trainkit.train("domain.yml", "config.yml", "data").code == 0


# ----------------------------------------------------------------- read-only


def _project(tmp_path: Path, c: float = 10.0) -> Path:
    project = tmp_path / "bot"
    if not project.exists():
        shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("tests"))
    (project / "config.yml").write_text(FAST_CONFIG.format(C=c))
    return project


BUILD_SCRIPT = """
import sys, warnings
import trainkit
from trainkit.errors import TrainkitError
warnings.simplefilter("ignore")
try:
    result = trainkit.train("domain.yml", "config.yml", "data", output=sys.argv[1])
except TrainkitError as exc:
    print("Error:", exc)
    sys.exit(1)
print("model", result.model)
"""


def _run_read_only(cache: Path, project: Path, output: Path) -> subprocess.CompletedProcess:
    """Build `project` with `cache` read-only: a read-only bind mount when running as
    root (which ignores permissions), file modes otherwise."""
    env = {**os.environ, "TRAINKIT_CACHE_DIR": str(cache), "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-c", BUILD_SCRIPT, str(output)]
    if os.geteuid() == 0:
        mount = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
        command = ["unshare", "-m", "sh", "-c", mount, str(cache), *command]
        return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=300)
    modes = {p: p.stat().st_mode for p in [cache, *cache.rglob("*")]}
    try:
        for path in modes:
            path.chmod(modes[path] & ~0o222)
        return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=300)
    finally:
        for path, mode in modes.items():
            path.chmod(mode)


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    root = tmp_path_factory.mktemp("readonly")
    project = _project(root)
    cache = root / "cache"
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        patch.setenv("TRAINKIT_CACHE_DIR", str(cache))
        patch.chdir(project)
        assert trainkit.train("domain.yml", "config.yml", "data").code == 0
    return root, project, cache


def _state(cache: Path) -> dict[str, int]:
    return {str(p.relative_to(cache)): p.stat().st_mtime_ns for p in cache.rglob("*")}


def test_a_fully_cached_build_works_from_a_read_only_cache(warm, tmp_path):
    root, project, cache = warm
    before = _state(cache)
    result = _run_read_only(cache, project, tmp_path / "models")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert list((tmp_path / "models").glob("*.tar.gz"))
    assert _state(cache) == before


def test_a_build_that_must_write_a_read_only_cache_says_so_in_one_line(warm, tmp_path):
    root, project, cache = warm
    changed = tmp_path / "changed"
    shutil.copytree(project, changed, ignore=shutil.ignore_patterns(".trainkit", "models"))
    (changed / "config.yml").write_text(FAST_CONFIG.format(C=3.0))
    result = _run_read_only(cache, changed, tmp_path / "models")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and str(cache) in lines[0] and "read-only" in lines[0], result.stdout


def test_read_only_cache_api_reads_and_refuses_writes(tmp_path, monkeypatch):
    cache, digests = _filled(tmp_path, count=3)
    _close(cache)
    monkeypatch.setattr(Cache, "_writable", lambda self: False)
    reader = Cache(tmp_path / "cache")
    assert reader.read_only
    assert reader.lookup("fp1") == digests["fp1"]
    assert reader.path_of(digests["fp1"]) is not None
    artifact = tmp_path / "new"
    artifact.mkdir()
    (artifact / "x.json").write_text("{}")
    with pytest.raises(CacheWriteError, match=str(tmp_path / "cache") + ".*read-only"):
        reader.put("fp-new", artifact, node="train_X")


def test_a_damaged_read_only_index_is_used_as_an_empty_cache(tmp_path, monkeypatch):
    cache, digests = _filled(tmp_path, count=3)
    _damage(cache, "garbage header")
    monkeypatch.setattr(Cache, "_writable", lambda self: False)
    with pytest.warns(CacheWarning, match="read-only"):
        reader = Cache(tmp_path / "cache")
        assert reader.lookup("fp1") is None
        assert reader.path_of(digests["fp1"]) is None
        assert reader.stats() == {"entries": 0, "objects": 0, "bytes": 0}
    artifact = tmp_path / "new"
    artifact.mkdir()
    (artifact / "x.json").write_text("{}")
    with pytest.raises(CacheWriteError, match="read-only"):
        reader.put("fp-new", artifact, node="train_X")
