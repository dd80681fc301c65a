"""Stable digests of configuration values, files and artifact directories.

The build cache is only correct if the same inputs always hash to the same key, on every
machine and in every process. So values are serialised to one canonical JSON form before
hashing, unsupported types are rejected instead of being stringified (a ``str()`` of an
object can embed a memory address and silently defeat caching), and directory digests
depend only on relative names and bytes, never on where a directory lives or when it was
written.

All digests are xxh3_128 in lowercase hex (32 characters): fast enough to hash large
model weights on every build, and wide enough that accidental collisions are not a
practical concern. It is not a cryptographic hash; the cache is not a security boundary.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import xxhash

_CHUNK = 1 << 20  # 1 MiB: large enough to amortise call overhead, small enough for memory


def _plain(value: Any, where: str) -> Any:
    """Reduce ``value`` to exact JSON builtins, refusing anything ambiguous.

    Subclasses (str enums, numpy floats, IntEnum) are converted to their base value so
    that ``json`` cannot apply a subclass ``__repr__``/``__str__`` and make the output
    depend on the type rather than the value.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError(f"cannot fingerprint non-finite float {number!r} at {where}")
        return number
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                # {1: x} and {"1": x} would otherwise serialise identically.
                raise TypeError(
                    f"cannot fingerprint dict key {key!r} of type {type(key).__name__} "
                    f"at {where}: keys must be strings"
                )
            result[str.__str__(key)] = _plain(item, f"{where}.{key}")
        return result
    if isinstance(value, list | tuple):
        return [_plain(item, f"{where}[{index}]") for index, item in enumerate(value)]
    raise TypeError(
        f"cannot fingerprint value of type {type(value).__name__} at {where}; "
        "convert it to str/int/float/bool/None/list/dict first"
    )


def canonical_json(obj: Any) -> bytes:
    """Serialise ``obj`` so that equal values always give identical bytes.

    Keys are sorted so dict insertion order is irrelevant; tuples become lists because a
    YAML or JSON round trip cannot tell them apart; floats use Python's shortest
    round-tripping repr, which is the same on every platform. Non-finite floats raise
    ``ValueError`` because they have no JSON form.
    """
    plain = _plain(obj, "$")
    text = json.dumps(
        plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def digest_bytes(data: bytes) -> str:
    """Digest raw bytes; equal to :func:`digest_file` of a file holding those bytes."""
    return xxhash.xxh3_128_hexdigest(data)


def fingerprint(obj: Any) -> str:
    """Digest of a JSON-like value, independent of key order and container type."""
    return digest_bytes(canonical_json(obj))


def digest_file(path: str | os.PathLike[str]) -> str:
    """Digest a file's content in chunks so large weight files need not fit in memory."""
    hasher = xxhash.xxh3_128()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def digest_files(paths: Iterable[str | os.PathLike[str]]) -> str:
    """Digest an ordered list of files by content only.

    File names and locations deliberately do not count: the same training data copied
    elsewhere or renamed gives the same digest, so moving a project does not invalidate
    the cache. Order does count (it is part of how data is fed to a component). Callers
    for whom names matter should put them in the node's config instead.
    """
    entries = [digest_file(path) for path in paths]
    return fingerprint(["files", entries])


def _walk(root: Path, relative: str, out: list[tuple[str, str, str]]) -> None:
    """Collect (relative posix path, kind, content digest) entries below ``root``."""
    directory = root / relative if relative else root
    with os.scandir(directory) as scan:
        entries = sorted(scan, key=lambda entry: entry.name)
    for entry in entries:
        rel = f"{relative}/{entry.name}" if relative else entry.name
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISLNK(mode):
            raise ValueError(f"artifact contains a symlink, which is not allowed: {entry.path}")
        if stat.S_ISDIR(mode):
            out.append((rel, "dir", ""))
            _walk(root, rel, out)
        elif stat.S_ISREG(mode):
            out.append((rel, "file", digest_file(entry.path)))
        else:
            raise ValueError(
                f"artifact contains a special file, which is not allowed: {entry.path}"
            )


def digest_dir(path: str | os.PathLike[str]) -> str:
    """Digest a directory tree by relative POSIX names and file contents.

    Timestamps, permissions and the directory's own location are ignored, so an artifact
    restored anywhere hashes the same as the original. Empty directories count, because
    a restore reproduces them. Symlinks and special files are refused (``ValueError``):
    their meaning depends on the machine, so they cannot be cached faithfully.
    """
    root = Path(path)
    mode = os.lstat(root).st_mode
    if stat.S_ISLNK(mode):
        raise ValueError(f"artifact directory is a symlink, which is not allowed: {root}")
    if not stat.S_ISDIR(mode):
        raise NotADirectoryError(f"not a directory: {root}")
    entries: list[tuple[str, str, str]] = []
    _walk(root, "", entries)
    return digest_entries(entries)


def digest_entries(entries: Iterable[tuple[str, str, str]]) -> str:
    """Digest of a tree given as (relative posix path, "dir" or "file", content digest).

    This is :func:`digest_dir` without the file system, so a tree read from somewhere
    else (the members of a model archive) can be checked against a cached artifact.
    """
    # Names are sorted per directory level while walking; sort globally so the order is
    # the plain lexicographic order of relative paths whatever produced the entries.
    entries = sorted(entries)
    hasher = xxhash.xxh3_128()
    hasher.update(b"trainkit-dir-v1\n")
    for entry in entries:
        # One canonical JSON line per entry: newlines inside names are escaped by JSON,
        # so entries cannot run into each other.
        hasher.update(canonical_json(list(entry)))
        hasher.update(b"\n")
    return hasher.hexdigest()


def node_fingerprint(
    component: str, version: str, config: dict[str, Any], inputs: dict[str, Any], code: str = ""
) -> str:
    """Key under which a graph node's output is cached.

    `code` is the digest of the component's source closure, so editing a component's
    implementation invalidates exactly its entries. Inputs enter as content digests rather
    than fingerprints: when an upstream node reruns but produces byte-identical output,
    its digest is unchanged and so is this key (early cutoff).
    """
    return fingerprint(
        {"component": component, "version": version, "code": code, "config": config, "inputs": inputs}
    )
