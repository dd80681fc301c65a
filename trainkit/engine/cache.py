"""Content-addressed store of node artifacts, shared safely by concurrent builds.

Two maps are kept apart on purpose: ``runs`` (node fingerprint -> output digest) and
``objects`` (digest -> stored directory). Nodes whose inputs differ but whose outputs are
byte-identical share one object, and a rerun that reproduces an existing output is
recognised by its digest (early cutoff).

Concurrency and crash safety rest on two rules:

* An object directory only ever appears through ``os.replace`` of a fully written copy
  under ``root/tmp``, so a reader can never see half an artifact; and it only
  disappears through ``os.replace`` back into ``root/tmp`` before being deleted.
* Every rename into or out of ``objects/`` happens while holding the SQLite write lock
  (``BEGIN IMMEDIATE``) together with the matching row changes, so the index and the
  directory tree change together as far as any other process can tell. A crash between
  the rename and the commit leaves an object without rows; lookups never reach it and
  :meth:`Cache.gc` (also run during eviction) deletes it.

SQLite runs in WAL mode, which needs a local file system; do not put the cache on NFS.

The cache survives its own damage and its environment: an index that is no longer a
database (garbage over its header, cut short) is reported once and rebuilt from the
object directories (the fingerprint mappings are lost, so nodes rerun, and early cutoff
finds their outputs again); a cache directory that cannot be written is used read-only,
so a fully cached build still works from it; and any write that fails (read-only, disk
full) is a `CacheWriteError` naming what could not be stored, with nothing partial left.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import shutil
import sqlite3
import stat
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from trainkit.engine.fingerprint import digest_dir
from trainkit.errors import TrainkitError

#: Size limit used by :meth:`Cache.for_project` when ``TRAINKIT_CACHE_MAX_SIZE`` is unset.
#: Model weights add up quickly across many configurations; an unbounded cache would
#: eventually fill the disk of anyone who experiments a lot.
DEFAULT_MAX_SIZE_BYTES = 5 * 1024**3

CACHE_DIR_ENV = "TRAINKIT_CACHE_DIR"
CACHE_MAX_SIZE_ENV = "TRAINKIT_CACHE_MAX_SIZE"

_BUSY_TIMEOUT_SECONDS = 60.0
_STALE_TMP_SECONDS = 3600.0
_DIGEST_RE = re.compile(r"[0-9a-f]{32}")
_SIZE_RE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(?:i?b)?\s*", re.IGNORECASE)
_UNITS = {"": 1024**2, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    fingerprint TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    node TEXT,
    component TEXT,
    created REAL,
    last_used REAL
);
CREATE TABLE IF NOT EXISTS objects (
    digest TEXT PRIMARY KEY,
    size INTEGER,
    created REAL,
    last_used REAL
);
CREATE INDEX IF NOT EXISTS runs_by_digest ON runs(digest);
CREATE INDEX IF NOT EXISTS objects_by_last_used ON objects(last_used);
"""


class CacheWarning(UserWarning):
    """A cache entry was unusable and has been dropped; the build continues without it."""


class CacheWriteError(TrainkitError):
    """Something could not be written to the cache (read-only directory, disk full)."""


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    """Whether SQLite says the index file itself is bad (not busy, not read-only)."""
    return not isinstance(exc, sqlite3.OperationalError)


def _is_write_failure(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return any(
        marker in text
        for marker in ("readonly", "read-only", "disk is full", "disk i/o", "unable to open")
    )


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _survives_damaged_index(method: _Method) -> _Method:
    """Run a public method; if the index turns out to be damaged, rebuild it and retry."""

    @functools.wraps(method)
    def wrapper(self: Cache, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            if not _is_damage(exc):
                raise
            self._rebuild_index(exc)
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def parse_size(text: str) -> int | None:
    """Parse a human cache size such as ``500``, ``800M``, ``2G`` or ``1.5GiB``.

    A bare number means MiB because that is the scale at which people think about model
    caches. ``unlimited``/``none`` lift the limit; ``0`` disables storing entirely.
    Suffixes are binary (K = 1024).
    """
    cleaned = text.strip().lower()
    if cleaned in ("unlimited", "none", "inf"):
        return None
    match = _SIZE_RE.fullmatch(cleaned)
    if match is None:
        raise TrainkitError(
            f"{CACHE_MAX_SIZE_ENV}={text!r} is not a size; use e.g. 500 (MiB), 800M, 2G, "
            "0 to disable the cache or 'unlimited'"
        )
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def _check_digest(digest: str) -> None:
    """Reject anything that is not a digest, since it becomes part of a path."""
    if not isinstance(digest, str) or _DIGEST_RE.fullmatch(digest) is None:
        raise ValueError(f"not an artifact digest: {digest!r}")


def _copy_tree(source: Path, dest: Path) -> int:
    """Copy regular files and directories, returning the total file size in bytes.

    Written by hand rather than with ``shutil.copytree`` because that follows or
    recreates symlinks, and an artifact must be self-contained plain files.
    """
    dest.mkdir(parents=True, exist_ok=True)
    total = 0
    with os.scandir(source) as scan:
        entries = list(scan)
    for entry in entries:
        mode = entry.stat(follow_symlinks=False).st_mode
        target = dest / entry.name
        if stat.S_ISDIR(mode):
            total += _copy_tree(Path(entry.path), target)
        elif stat.S_ISREG(mode):
            shutil.copyfile(entry.path, target, follow_symlinks=False)
            total += entry.stat(follow_symlinks=False).st_size
        else:
            raise ValueError(
                f"artifact may only contain regular files and directories: {entry.path}"
            )
    return total


def _tree_size(path: Path) -> int:
    """Total size of regular files below ``path``."""
    total = 0
    for dirpath, _dirnames, filenames in os.walk(path):
        for name in filenames:
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


class Cache:
    """Fingerprint -> artifact cache rooted at one directory.

    ``max_size_bytes`` of ``None`` means unlimited and ``0`` disables the cache: lookups
    miss, :meth:`put` only computes the digest, and nothing is created on disk. The
    object holds no open handles (a fresh SQLite connection is used per operation), so
    it can be handed to worker processes and used from several threads.
    """

    def __init__(self, root: Path, max_size_bytes: int | None = None, evict_on_put: bool = True) -> None:
        if max_size_bytes is not None and max_size_bytes < 0:
            raise ValueError(f"max_size_bytes must be >= 0 or None, got {max_size_bytes}")
        self.root = Path(root)
        self.max_size_bytes = max_size_bytes
        # A build stores with this off and calls `trim` when it is done: evicting while a
        # build runs could drop an output a later node of the same build needs.
        self.evict_on_put = evict_on_put
        self._index = self.root / "index.sqlite"
        self._objects = self.root / "objects"
        self._tmp = self.root / "tmp"
        # One connection per (process, thread): SQLite connections belong to the thread
        # that opened them, and joblib's Dask backend reads inputs from a thread of its own.
        self._conns: dict[tuple[int, int], sqlite3.Connection] = {}
        self._warned_damage = False
        self._index_unusable = False  # damaged and read-only: every lookup misses
        self.read_only = False
        if self.enabled:
            self._open_or_rebuild()

    def __repr__(self) -> str:
        return f"Cache(root={str(self.root)!r}, max_size_bytes={self.max_size_bytes!r})"

    @classmethod
    def for_project(cls, project_dir: Path) -> Cache:
        """The cache a project build uses, honouring the environment overrides.

        ``TRAINKIT_CACHE_DIR`` (absolute, or relative to the project) lets CI share one
        cache between checkouts; ``TRAINKIT_CACHE_MAX_SIZE`` is parsed by
        :func:`parse_size` and defaults to :data:`DEFAULT_MAX_SIZE_BYTES`.
        """
        project_dir = Path(project_dir)
        configured = os.environ.get(CACHE_DIR_ENV, "").strip()
        if configured:
            root = Path(configured).expanduser()
            if not root.is_absolute():
                root = project_dir / root
        else:
            root = project_dir / ".trainkit" / "cache"
        size_text = os.environ.get(CACHE_MAX_SIZE_ENV, "").strip()
        limit = parse_size(size_text) if size_text else DEFAULT_MAX_SIZE_BYTES
        return cls(root, limit)

    @property
    def enabled(self) -> bool:
        """False when the size limit is 0, i.e. caching was switched off."""
        return self.max_size_bytes != 0

    # -- plumbing ---------------------------------------------------------------------

    def _writable(self) -> bool:
        """Whether this process may create files in the cache (False on a read-only
        mount, which `os.access` reports even to root)."""
        existing = self.root
        while not existing.exists() and existing.parent != existing:
            existing = existing.parent
        return os.access(existing, os.W_OK)

    def _open_or_rebuild(self) -> None:
        try:
            self._open()
        except sqlite3.DatabaseError as exc:
            if not _is_damage(exc):
                raise
            self._rebuild_index(exc)

    def _open(self) -> None:
        """Create the layout and schema, and drop temp dirs left by crashed processes."""
        self.read_only = not self._writable()
        if self.read_only:
            return
        try:
            self._objects.mkdir(parents=True, exist_ok=True)
            self._tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._write_error("create the cache directories", exc) from None
        conn = self._raw_connect()
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            with self._transaction(conn):
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
        finally:
            conn.close()
        self._clean_tmp()

    def _raw_connect(self) -> sqlite3.Connection:
        if self.read_only:
            return self._read_only_connect()
        conn = sqlite3.connect(
            str(self._index), timeout=_BUSY_TIMEOUT_SECONDS, isolation_level=None
        )
        conn.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_SECONDS * 1000)}")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _read_only_connect(self) -> sqlite3.Connection:
        """A connection that never writes. Plain read-only mode sees the WAL when its
        shared-memory file exists; without it SQLite cannot open a WAL database in a
        directory it may not write, and `immutable` (nobody writes a read-only
        directory) reads the main file alone."""
        base = self._index.resolve().as_uri()
        for query in ("mode=ro", "mode=ro&immutable=1"):
            conn = sqlite3.connect(f"{base}?{query}", uri=True, isolation_level=None)
            try:
                conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
                return conn
            except sqlite3.OperationalError:
                conn.close()
        return sqlite3.connect(f"{base}?mode=ro&immutable=1", uri=True, isolation_level=None)

    def _has_index(self) -> bool:
        """Whether there is an index to act on, re-creating it if a live cache lost it."""
        if self._index_unusable:
            return False
        if self._index.exists():
            return True
        if self.enabled and self._writable():
            self._open()
            return True
        return False

    def _write_error(self, what: str, exc: BaseException) -> CacheWriteError:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if self.read_only or (isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES)):
            reason = f"the cache directory is read-only ({reason})"
        return CacheWriteError(f"cannot {what} in the cache at {self.root}: {reason}")

    def _require_writable(self, what: str) -> None:
        if self.read_only:
            raise CacheWriteError(
                f"cannot {what} in the cache at {self.root}: the cache directory is read-only; "
                f"point {CACHE_DIR_ENV} at a writable directory"
            )

    def _rebuild_index(self, exc: sqlite3.DatabaseError) -> None:
        """Replace a damaged index by one listing the objects on disk.

        The objects are content-addressed, so their rows can be recreated from the
        directory names; the fingerprint mappings cannot, and nodes simply rerun. A
        read-only cache cannot be repaired, so it is used as an empty one.
        """
        if not self._warned_damage:
            self._warned_damage = True
            action = (
                "using the cache as empty (it is read-only)" if self.read_only
                else "rebuilt it from the stored objects, nodes will rerun once"
            )
            warnings.warn(
                f"trainkit cache: the index {self._index} is damaged ({exc}); {action}",
                CacheWarning,
                stacklevel=4,
            )
        self._close_connections()
        if self.read_only:
            self._index_unusable = True
            return
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self._index}{suffix}").unlink(missing_ok=True)
        self._open()
        now = time.time()
        rows = []
        for shard in sorted(self._objects.iterdir()) if self._objects.is_dir() else []:
            for entry in sorted(shard.iterdir()) if shard.is_dir() else []:
                if _DIGEST_RE.fullmatch(entry.name) and entry.is_dir():
                    rows.append((entry.name, _tree_size(entry), now, now))
        with self._connection() as conn, self._transaction(conn):
            conn.executemany(
                "INSERT OR IGNORE INTO objects(digest, size, created, last_used) VALUES (?, ?, ?, ?)",
                rows,
            )

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        # Opened lazily and kept: opening and closing a WAL database costs milliseconds,
        # and a no-op build asks the index a few hundred questions.
        owner = (os.getpid(), threading.get_ident())
        conn = self._conns.get(owner)
        if conn is None:
            if any(pid != owner[0] for pid, _ in self._conns):
                self._conns = {}  # inherited through fork: the parent's, not ours to use
            conn = self._conns[owner] = self._raw_connect()
        yield conn

    def _close_connections(self) -> None:
        """Close this process's connections (another thread's close fails: it is dropped)."""
        for owner, conn in list(self._conns.items()):
            if owner[0] == os.getpid():
                try:
                    conn.close()
                except sqlite3.ProgrammingError:
                    pass
        self._conns = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_conns"] = {}  # connections do not cross process boundaries
        return state

    @staticmethod
    @contextmanager
    def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
        # IMMEDIATE takes the write lock up front, so two writers queue on the busy
        # timeout instead of one failing when it upgrades from a read lock.
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _object_dir(self, digest: str) -> Path:
        return self._objects / digest[:2] / digest

    def _new_tmp(self, kind: str) -> Path:
        return self._tmp / f"{kind}-{os.getpid()}-{uuid.uuid4().hex}"

    def _detach(self, digest: str) -> Path | None:
        """Atomically take an object out of ``objects/``; the caller deletes the result."""
        trash = self._new_tmp("trash")
        try:
            os.replace(self._object_dir(digest), trash)
        except FileNotFoundError:
            return None
        return trash

    def _clean_tmp(self) -> None:
        if self.read_only:
            return
        cutoff = time.time() - _STALE_TMP_SECONDS
        try:
            entries = list(os.scandir(self._tmp))
        except FileNotFoundError:
            return
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            except OSError:
                continue  # another process cleaned it first

    def _touch(self, digest: str, fingerprint: str | None = None) -> None:
        if self.read_only:
            return  # LRU order is a hint; reading must not need a write
        now = time.time()
        with self._connection() as conn, self._transaction(conn):
            conn.execute("UPDATE objects SET last_used=? WHERE digest=?", (now, digest))
            if fingerprint is not None:
                conn.execute("UPDATE runs SET last_used=? WHERE fingerprint=?", (now, fingerprint))

    def _upsert(
        self,
        conn: sqlite3.Connection,
        fingerprint: str,
        digest: str,
        size: int,
        node: str,
        component: str,
    ) -> None:
        now = time.time()
        conn.execute(
            "INSERT INTO objects(digest, size, created, last_used) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(digest) DO UPDATE SET last_used=excluded.last_used",
            (digest, size, now, now),
        )
        conn.execute(
            "INSERT INTO runs(fingerprint, digest, node, component, created, last_used) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(fingerprint) DO UPDATE SET "
            "digest=excluded.digest, node=excluded.node, component=excluded.component, "
            "last_used=excluded.last_used",
            (fingerprint, digest, node, component, now, now),
        )

    def _discard_damaged(self, digest: str, reason: str) -> None:
        warnings.warn(
            f"trainkit cache: stored artifact {digest} is damaged ({reason}); "
            + ("ignoring it (read-only cache)" if self.read_only else "removed it, the node will be rebuilt"),
            CacheWarning,
            stacklevel=3,
        )
        if self.read_only:
            return
        with self._connection() as conn, self._transaction(conn):
            conn.execute("DELETE FROM runs WHERE digest=?", (digest,))
            conn.execute("DELETE FROM objects WHERE digest=?", (digest,))
            trash = self._detach(digest)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)

    def _sweep_orphans(self, conn: sqlite3.Connection) -> list[Path]:
        """Detach object dirs that have no row; must run inside a write transaction.

        Holding the write lock guarantees no put is between its rename and its insert,
        so every row-less object really is left over from a crash.
        """
        known = {row[0] for row in conn.execute("SELECT digest FROM objects")}
        trash: list[Path] = []
        for shard in sorted(self._objects.iterdir()) if self._objects.is_dir() else []:
            if not shard.is_dir():
                continue
            for entry in sorted(shard.iterdir()):
                if entry.name not in known:
                    target = self._new_tmp("trash")
                    try:
                        os.replace(entry, target)
                    except FileNotFoundError:
                        continue
                    trash.append(target)
        return trash

    def trim(self, recent: Sequence[str] = ()) -> None:
        """Apply the size bound after a build: `recent` (the build's outputs) become the
        most recently used, then the least recently used objects go until the cache fits."""
        if self.max_size_bytes is None or not self.enabled or self.read_only or not self._has_index():
            return
        with self._connection() as conn:
            (total,) = conn.execute("SELECT COALESCE(SUM(size), 0) FROM objects").fetchone()
        if total <= self.max_size_bytes:
            return  # within the bound: a build that changed nothing writes nothing here either
        now = time.time()
        with self._connection() as conn, self._transaction(conn):
            conn.executemany("UPDATE objects SET last_used=? WHERE digest=?", [(now, d) for d in recent])
        self._enforce_limit(keep="")

    def _enforce_limit(self, keep: str) -> None:
        """Evict least recently used objects until under the limit, sparing ``keep``."""
        limit = self.max_size_bytes
        if limit is None:
            return
        trash: list[Path] = []
        with self._connection() as conn:
            (total,) = conn.execute("SELECT COALESCE(SUM(size), 0) FROM objects").fetchone()
            if total <= limit:
                return
            with self._transaction(conn):
                (total,) = conn.execute("SELECT COALESCE(SUM(size), 0) FROM objects").fetchone()
                candidates = conn.execute(
                    "SELECT digest, size FROM objects WHERE digest != ? ORDER BY last_used, rowid",
                    (keep,),
                ).fetchall()
                for digest, size in candidates:
                    if total <= limit:
                        break
                    conn.execute("DELETE FROM runs WHERE digest=?", (digest,))
                    conn.execute("DELETE FROM objects WHERE digest=?", (digest,))
                    detached = self._detach(digest)
                    if detached is not None:
                        trash.append(detached)
                    total -= size or 0
                trash.extend(self._sweep_orphans(conn))
        for path in trash:
            shutil.rmtree(path, ignore_errors=True)

    # -- public API -------------------------------------------------------------------

    @_survives_damaged_index
    def lookup(self, fingerprint: str, touch: bool = True) -> str | None:
        """Output digest recorded for ``fingerprint`` if its object is still stored.

        Only checks that the object directory exists; content is verified when it is
        actually used (:meth:`path_of`, :meth:`restore`), so a no-op build stays cheap.
        ``touch=False`` (planning) leaves the LRU clock alone; using an entry touches it.
        """
        if not self.enabled or not self._has_index():
            return None
        with self._connection() as conn:
            row = conn.execute(
                "SELECT digest FROM runs WHERE fingerprint=?", (fingerprint,)
            ).fetchone()
        if row is None:
            return None
        digest = row[0]
        if not self._object_dir(digest).is_dir():
            return None
        if touch:
            self._touch(digest, fingerprint)
        return digest

    def put(self, fingerprint: str, artifact_dir: Path, node: str = "", component: str = "") -> str:
        """Store ``artifact_dir`` under its content digest and map ``fingerprint`` to it.

        The digest is taken from the private copy, not the source, so a component still
        writing to its output cannot make the stored bytes disagree with their digest.
        When the cache is disabled only the digest is computed.
        """
        source = Path(artifact_dir)
        if not self.enabled:
            return digest_dir(source)
        what = f"store the output of {node or fingerprint}"
        if self.read_only:
            # Providers rerun on every build; their unchanged output needs no write.
            digest = digest_dir(source)
            if self.lookup(fingerprint, touch=False) == digest:
                return digest
            self._require_writable(what)
        try:
            digest = self._store(fingerprint, source, node, component)
        except sqlite3.DatabaseError as exc:
            if _is_damage(exc):
                self._rebuild_index(exc)
                digest = self._store(fingerprint, source, node, component)
            elif _is_write_failure(exc):
                raise self._write_error(what, exc) from None
            else:
                raise
        except OSError as exc:
            raise self._write_error(what, exc) from None
        if self.evict_on_put:
            self._enforce_limit(keep=digest)
        return digest

    def _store(self, fingerprint: str, source: Path, node: str, component: str) -> str:
        self._has_index()
        staging = self._new_tmp("put")
        try:
            size = _copy_tree(source, staging)
            digest = digest_dir(staging)
            target = self._object_dir(digest)
            with self._connection() as conn, self._transaction(conn):
                if not target.is_dir():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        os.replace(staging, target)
                    except OSError:
                        # Only an identical object can be in the way (content addressing).
                        if not target.is_dir():
                            raise
                self._upsert(conn, fingerprint, digest, size, node, component)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return digest

    @_survives_damaged_index
    def path_of(self, digest: str, verify: bool = True) -> Path | None:
        """Directory of a stored object, or ``None`` if it is missing or damaged.

        Verification rehashes the whole object. A damaged entry (edited, truncated or
        half-deleted by hand) is reported once as a :class:`CacheWarning`, removed, and
        treated as a miss, so the build reruns the node instead of using wrong data.
        """
        _check_digest(digest)
        if not self.enabled or not self._has_index():
            return None
        target = self._object_dir(digest)
        if not target.is_dir():
            return None
        if verify:
            try:
                actual = digest_dir(target)
                reason = "content does not match its digest"
            except (OSError, ValueError) as exc:
                if not target.exists():
                    return None  # evicted by another process while we read it
                actual, reason = None, str(exc)
            if actual != digest:
                self._discard_damaged(digest, reason)
                return None
        self._touch(digest)
        return target

    @_survives_damaged_index
    def restore(self, digest: str, dest: Path) -> bool:
        """Copy a stored object to ``dest`` (absent or empty); False if unavailable.

        The copy itself is checked against the digest, which also covers the object being
        evicted or modified while it was being copied. On failure ``dest`` is left as it
        was found.
        """
        _check_digest(digest)
        dest = Path(dest)
        existed = dest.exists()
        if existed and (not dest.is_dir() or any(dest.iterdir())):
            raise FileExistsError(f"restore target is not an empty directory: {dest}")
        source = self.path_of(digest, verify=False)
        if source is None:
            return False
        try:
            _copy_tree(source, dest)
            ok = digest_dir(dest) == digest
        except (OSError, ValueError):
            ok = False
        if ok:
            return True
        if existed:
            for child in dest.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        else:
            shutil.rmtree(dest, ignore_errors=True)
        # Find out whether the stored object itself is bad; this warns and removes it.
        self.path_of(digest, verify=True)
        return False

    @_survives_damaged_index
    def record(self, fingerprint: str, digest: str, node: str = "", component: str = "") -> bool:
        """Map ``fingerprint`` to an object that is already stored.

        Used when a forced rerun reproduced an existing output, so no copy is needed.
        Returns False (and records nothing) if the object is not in the cache.
        """
        _check_digest(digest)
        if not self.enabled or not self._has_index():
            return False
        self._require_writable(f"record the output of {node or fingerprint}")
        target = self._object_dir(digest)
        with self._connection() as conn, self._transaction(conn):
            if not target.is_dir():
                return False
            row = conn.execute("SELECT size FROM objects WHERE digest=?", (digest,)).fetchone()
            size = row[0] if row is not None else _tree_size(target)
            self._upsert(conn, fingerprint, digest, size, node, component)
        return True

    @_survives_damaged_index
    def forget(self, fingerprint: str) -> None:
        """Drop one fingerprint mapping; its object stays (others may share it)."""
        if not self._has_index():
            return
        self._require_writable("forget an entry")
        with self._connection() as conn, self._transaction(conn):
            conn.execute("DELETE FROM runs WHERE fingerprint=?", (fingerprint,))

    @_survives_damaged_index
    def stats(self) -> dict[str, Any]:
        """Counts for ``trainkit cache`` output: mapped fingerprints, objects, bytes."""
        if not self._has_index():
            return {"entries": 0, "objects": 0, "bytes": 0}
        with self._connection() as conn:
            (entries,) = conn.execute("SELECT COUNT(*) FROM runs").fetchone()
            objects, size = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM objects"
            ).fetchone()
        return {"entries": entries, "objects": objects, "bytes": size}

    @_survives_damaged_index
    def clear(self) -> None:
        """Remove every entry and object (works even when storing is disabled)."""
        if not self._has_index():
            return
        self._require_writable("clear the entries")
        trash = self._new_tmp("trash")
        with self._connection() as conn, self._transaction(conn):
            conn.execute("DELETE FROM runs")
            conn.execute("DELETE FROM objects")
            self._tmp.mkdir(parents=True, exist_ok=True)
            if self._objects.exists():
                os.replace(self._objects, trash)
            self._objects.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(trash, ignore_errors=True)

    @_survives_damaged_index
    def gc(self) -> int:
        """Repair leftovers of crashes: orphan objects, dangling rows, stale temp dirs.

        Returns the number of orphan objects removed.
        """
        if not self._has_index() or self.read_only:
            return 0
        self._clean_tmp()
        with self._connection() as conn, self._transaction(conn):
            trash = self._sweep_orphans(conn)
            for (digest,) in conn.execute("SELECT digest FROM objects").fetchall():
                if not self._object_dir(digest).is_dir():
                    conn.execute("DELETE FROM runs WHERE digest=?", (digest,))
                    conn.execute("DELETE FROM objects WHERE digest=?", (digest,))
            conn.execute("DELETE FROM runs WHERE digest NOT IN (SELECT digest FROM objects)")
        for path in trash:
            shutil.rmtree(path, ignore_errors=True)
        return len(trash)
