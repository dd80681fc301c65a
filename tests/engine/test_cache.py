import multiprocessing
import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from trainkit.engine import cache as cache_module
from trainkit.engine.cache import (
    DEFAULT_MAX_SIZE_BYTES,
    Cache,
    CacheWarning,
    parse_size,
)
from trainkit.engine.fingerprint import digest_dir
from trainkit.errors import TrainkitError


def _artifact(path: Path, payload: bytes = b"weights", size: int = 0) -> Path:
    """A small artifact dir; ``size`` pads the binary file to roughly that many bytes."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "meta.json").write_text('{"kind": "test"}')
    body = payload if size <= 0 else (payload * (size // max(len(payload), 1) + 1))[:size]
    (path / "data").mkdir(exist_ok=True)
    (path / "data" / "weights.bin").write_bytes(body)
    return path


def _object_count(root: Path) -> int:
    return sum(1 for shard in (root / "objects").iterdir() for _ in shard.iterdir())


def test_put_lookup_restore(tmp_path):
    cache = Cache(tmp_path / "cache")
    source = _artifact(tmp_path / "out")
    assert cache.lookup("fp1") is None

    digest = cache.put("fp1", source, node="train_x", component="X")
    assert digest == digest_dir(source)
    assert cache.lookup("fp1") == digest
    stored = cache.path_of(digest)
    assert stored == tmp_path / "cache" / "objects" / digest[:2] / digest
    assert (tmp_path / "cache" / "index.sqlite").is_file()

    dest = tmp_path / "restored"
    assert cache.restore(digest, dest)
    assert digest_dir(dest) == digest
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cache.restore(digest, empty)
    with pytest.raises(FileExistsError):
        cache.restore(digest, dest)
    assert cache.stats() == {
        "entries": 1,
        "objects": 1,
        "bytes": len(b"weights") + len('{"kind": "test"}'),
    }

    with sqlite3.connect(tmp_path / "cache" / "index.sqlite") as conn:
        row = conn.execute("SELECT digest, node, component FROM runs").fetchone()
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert row == (digest, "train_x", "X")
    assert mode == "wal"


def test_identical_outputs_are_stored_once(tmp_path):
    cache = Cache(tmp_path / "cache")
    first = cache.put("fp-a", _artifact(tmp_path / "a", b"same"))
    second = cache.put("fp-b", _artifact(tmp_path / "elsewhere" / "b", b"same"))
    assert first == second
    assert cache.lookup("fp-a") == cache.lookup("fp-b") == first
    assert cache.stats()["entries"] == 2
    assert cache.stats()["objects"] == 1
    assert _object_count(tmp_path / "cache") == 1


def test_fingerprint_can_be_remapped(tmp_path):
    cache = Cache(tmp_path / "cache")
    old = cache.put("fp", _artifact(tmp_path / "a", b"old"))
    new = cache.put("fp", _artifact(tmp_path / "b", b"new"))
    assert old != new
    assert cache.lookup("fp") == new


def test_damaged_entry_is_a_miss_and_is_removed(tmp_path):
    cache = Cache(tmp_path / "cache")
    digest = cache.put("fp", _artifact(tmp_path / "out"))
    stored = cache.path_of(digest, verify=False)
    assert stored is not None
    (stored / "data" / "weights.bin").write_bytes(b"tampered")

    with pytest.warns(CacheWarning, match=f"{digest} is damaged"):
        assert cache.path_of(digest) is None
    assert not stored.exists()
    assert cache.lookup("fp") is None
    assert cache.stats() == {"entries": 0, "objects": 0, "bytes": 0}

    # Storing the output again heals the cache.
    assert cache.put("fp", _artifact(tmp_path / "out")) == digest
    assert cache.path_of(digest) is not None


def test_restore_of_damaged_entry_fails_cleanly(tmp_path):
    cache = Cache(tmp_path / "cache")
    digest = cache.put("fp", _artifact(tmp_path / "out"))
    stored = cache.path_of(digest, verify=False)
    (stored / "meta.json").unlink()
    dest = tmp_path / "dest"
    with pytest.warns(CacheWarning):
        assert cache.restore(digest, dest) is False
    assert not dest.exists()
    assert cache.lookup("fp") is None


def test_lookup_ignores_missing_object(tmp_path):
    cache = Cache(tmp_path / "cache")
    digest = cache.put("fp", _artifact(tmp_path / "out"))
    shutil.rmtree(cache.path_of(digest))
    assert cache.lookup("fp") is None
    assert cache.restore(digest, tmp_path / "dest") is False


def test_lru_eviction_under_small_limit(tmp_path):
    cache = Cache(tmp_path / "cache", max_size_bytes=2500)
    a = cache.put("fp-a", _artifact(tmp_path / "a", b"a", size=1000))
    time.sleep(0.01)
    b = cache.put("fp-b", _artifact(tmp_path / "b", b"b", size=1000))
    time.sleep(0.01)
    assert cache.lookup("fp-a") == a  # a is now more recently used than b
    time.sleep(0.01)
    c = cache.put("fp-c", _artifact(tmp_path / "c", b"c", size=1000))

    assert cache.lookup("fp-b") is None
    assert cache.path_of(b) is None
    assert cache.lookup("fp-a") == a
    assert cache.lookup("fp-c") == c
    stats = cache.stats()
    assert stats["objects"] == 2
    assert stats["bytes"] <= 2500


def test_object_just_written_is_never_evicted(tmp_path):
    cache = Cache(tmp_path / "cache", max_size_bytes=500)
    small = cache.put("fp-small", _artifact(tmp_path / "s", b"s", size=100))
    big = cache.put("fp-big", _artifact(tmp_path / "b", b"b", size=2000))
    assert cache.lookup("fp-big") == big
    assert cache.lookup("fp-small") is None
    assert cache.path_of(small) is None


def test_size_zero_disables_cache(tmp_path):
    root = tmp_path / "cache"
    cache = Cache(root, max_size_bytes=0)
    source = _artifact(tmp_path / "out")
    digest = cache.put("fp", source)
    assert digest == digest_dir(source)
    assert cache.lookup("fp") is None
    assert cache.path_of(digest) is None
    assert cache.restore(digest, tmp_path / "dest") is False
    assert cache.record("fp", digest) is False
    assert cache.stats() == {"entries": 0, "objects": 0, "bytes": 0}
    assert not root.exists()


def test_record_forget_clear(tmp_path):
    cache = Cache(tmp_path / "cache")
    digest = cache.put("fp", _artifact(tmp_path / "out"))
    assert cache.record("fp-forced", digest, "node", "Comp")
    assert cache.lookup("fp-forced") == digest
    assert cache.record("fp-other", "0" * 32) is False
    assert cache.lookup("fp-other") is None
    with pytest.raises(ValueError):
        cache.record("fp", "../../etc")

    cache.forget("fp")
    assert cache.lookup("fp") is None
    assert cache.lookup("fp-forced") == digest

    cache.clear()
    assert cache.lookup("fp-forced") is None
    assert cache.stats() == {"entries": 0, "objects": 0, "bytes": 0}
    assert list((tmp_path / "cache" / "objects").iterdir()) == []
    assert cache.put("fp", _artifact(tmp_path / "out")) == digest


def test_put_refuses_symlinks(tmp_path):
    cache = Cache(tmp_path / "cache")
    source = _artifact(tmp_path / "out")
    (source / "link").symlink_to(source / "meta.json")
    with pytest.raises(ValueError):
        cache.put("fp", source)
    assert cache.stats()["objects"] == 0
    assert list((tmp_path / "cache" / "tmp").iterdir()) == []


def test_object_appears_only_by_rename_from_tmp(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    cache = Cache(root)
    source = _artifact(tmp_path / "out")
    expected = digest_dir(source)
    seen = []
    real_replace = os.replace

    def spying_replace(src, dst):
        src, dst = Path(src), Path(dst)
        if dst.parent.parent == root / "objects":
            # At the commit point the complete copy sits in tmp and nothing is visible.
            assert src.parent == root / "tmp"
            assert digest_dir(src) == expected
            assert not dst.exists()
            seen.append((src, dst))
        return real_replace(src, dst)

    monkeypatch.setattr(cache_module.os, "replace", spying_replace)
    digest = cache.put("fp", source)
    assert seen == [(seen[0][0], root / "objects" / digest[:2] / digest)]
    assert not seen[0][0].exists()
    assert list((root / "tmp").iterdir()) == []


def test_orphan_object_from_crash_is_ignored_and_collected(tmp_path):
    root = tmp_path / "cache"
    cache = Cache(root)
    source = _artifact(tmp_path / "out")
    digest = digest_dir(source)
    orphan = root / "objects" / digest[:2] / digest
    orphan.parent.mkdir(parents=True)
    shutil.copytree(source, orphan)  # renamed into place, then crashed before the insert
    assert cache.lookup("fp") is None
    assert cache.stats()["objects"] == 0
    assert cache.gc() == 1
    assert not orphan.exists()

    shutil.copytree(source, orphan)
    assert cache.put("fp", source) == digest  # an existing identical object is adopted
    assert cache.lookup("fp") == digest
    assert cache.stats()["objects"] == 1


def test_stale_tmp_dirs_are_cleaned_on_open(tmp_path):
    root = tmp_path / "cache"
    Cache(root)
    old = root / "tmp" / "put-old"
    fresh = root / "tmp" / "put-fresh"
    old.mkdir()
    (old / "f").write_text("x")
    fresh.mkdir()
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    Cache(root)
    assert not old.exists()
    assert fresh.exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("10", 10 * 1024**2),
        ("2K", 2048),
        ("800m", 800 * 1024**2),
        ("1G", 1024**3),
        ("1.5GiB", int(1.5 * 1024**3)),
        (" 3 gb ", 3 * 1024**3),
        ("unlimited", None),
    ],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["lots", "-1", "5X", "1.2.3"])
def test_parse_size_rejects_garbage(text):
    with pytest.raises(TrainkitError, match="TRAINKIT_CACHE_MAX_SIZE"):
        parse_size(text)


def test_for_project_defaults(tmp_path, monkeypatch):
    monkeypatch.delenv("TRAINKIT_CACHE_DIR", raising=False)
    monkeypatch.delenv("TRAINKIT_CACHE_MAX_SIZE", raising=False)
    cache = Cache.for_project(tmp_path)
    assert cache.root == tmp_path / ".trainkit" / "cache"
    assert cache.max_size_bytes == DEFAULT_MAX_SIZE_BYTES
    assert (tmp_path / ".trainkit" / "cache" / "index.sqlite").exists()


def test_for_project_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINKIT_CACHE_DIR", "shared/cache")
    monkeypatch.setenv("TRAINKIT_CACHE_MAX_SIZE", "64")
    cache = Cache.for_project(tmp_path / "project")
    assert cache.root == tmp_path / "project" / "shared" / "cache"
    assert cache.max_size_bytes == 64 * 1024**2

    monkeypatch.setenv("TRAINKIT_CACHE_DIR", str(tmp_path / "absolute"))
    monkeypatch.setenv("TRAINKIT_CACHE_MAX_SIZE", "1G")
    cache = Cache.for_project(tmp_path / "project")
    assert cache.root == tmp_path / "absolute"
    assert cache.max_size_bytes == 1024**3

    monkeypatch.setenv("TRAINKIT_CACHE_DIR", str(tmp_path / "disabled"))
    monkeypatch.setenv("TRAINKIT_CACHE_MAX_SIZE", "0")
    cache = Cache.for_project(tmp_path / "project")
    assert not cache.enabled
    assert cache.lookup("anything") is None
    assert not (tmp_path / "disabled").exists()

    monkeypatch.setenv("TRAINKIT_CACHE_MAX_SIZE", "huge")
    with pytest.raises(TrainkitError):
        Cache.for_project(tmp_path / "project")


def _concurrent_worker(root: str, artifact: str, tag: str, rounds: int, start, results) -> None:
    """Runs in a spawned process: put the same artifact repeatedly, report digests."""
    try:
        cache = Cache(Path(root))
        start.wait(30)
        digests = []
        for index in range(rounds):
            digests.append(cache.put(f"{tag}-{index}", Path(artifact), node=tag))
        results.put((tag, digests))
    except BaseException as exc:  # report it: a silent death would only show as a timeout
        results.put((tag, f"failed: {exc!r}"))
        raise


def _run_workers(root: Path, jobs: list[tuple[Path, str]], rounds: int) -> dict[str, list[str]]:
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    results = context.Queue()
    processes = [
        context.Process(
            target=_concurrent_worker, args=(str(root), str(art), tag, rounds, start, results)
        )
        for art, tag in jobs
    ]
    for process in processes:
        process.start()
    start.set()
    collected = dict(results.get(timeout=300) for _ in processes)
    failures = {tag: value for tag, value in collected.items() if isinstance(value, str)}
    assert not failures, failures
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    return collected


def test_concurrent_puts_of_the_same_artifact(tmp_path):
    root = tmp_path / "cache"
    first = _artifact(tmp_path / "one", b"shared", size=50_000)
    second = tmp_path / "two"
    shutil.copytree(first, second)
    expected = digest_dir(first)

    results = _run_workers(root, [(first, "p1"), (second, "p2")], rounds=15)

    cache = Cache(root)
    assert set(results["p1"]) == set(results["p2"]) == {expected}
    for tag in ("p1", "p2"):
        for index in range(15):
            assert cache.lookup(f"{tag}-{index}") == expected
    assert cache.path_of(expected) is not None
    assert cache.stats() == {"entries": 30, "objects": 1, "bytes": cache.stats()["bytes"]}
    assert _object_count(root) == 1
    assert list((root / "tmp").iterdir()) == []


def test_concurrent_puts_of_different_artifacts(tmp_path):
    root = tmp_path / "cache"
    first = _artifact(tmp_path / "one", b"first", size=50_000)
    second = _artifact(tmp_path / "two", b"second", size=50_000)

    results = _run_workers(root, [(first, "p1"), (second, "p2")], rounds=15)

    cache = Cache(root)
    assert set(results["p1"]) == {digest_dir(first)}
    assert set(results["p2"]) == {digest_dir(second)}
    assert cache.stats()["entries"] == 30
    assert cache.stats()["objects"] == 2
    for digest in (digest_dir(first), digest_dir(second)):
        assert cache.path_of(digest) is not None


def test_one_cache_serves_several_threads(tmp_path):
    """The Dask backend packs a node's inputs from a dispatch thread of its own."""
    import threading

    cache = Cache(tmp_path / "cache")
    source = tmp_path / "artifact"
    source.mkdir()
    (source / "a.json").write_text("{}")
    digest = cache.put("fp", source)
    results = []

    def use():
        results.append((cache.lookup("fp"), cache.path_of(digest) is not None))

    threads = [threading.Thread(target=use) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [(digest, True)] * 3
