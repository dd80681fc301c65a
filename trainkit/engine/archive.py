"""Packing trained models into ``.tar.gz`` files and unpacking them safely.

Model archives travel between machines and are often downloaded, so extraction treats
every archive as untrusted: members that could write outside the target directory or
create links and devices are refused before anything is written. Writing is atomic (temp
file + rename) so a crash or a concurrent reader never sees a truncated model, and
deterministic so that identical training outputs produce identical archive bytes, which
makes "did anything change?" a byte comparison.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import posixpath
import random
import re
import stat
import tarfile
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import xxhash

from trainkit.engine.cache import parse_size
from trainkit.engine.fingerprint import digest_entries
from trainkit.errors import TrainkitError

METADATA_NAME = "metadata.json"
COMPONENTS_DIR = "components"
ARCHIVE_SUFFIX = ".tar.gz"

# Extraction filters (and their error type) arrived in Python 3.11.4.
_FILTER_ERRORS: tuple[type[Exception], ...] = tuple(
    error for error in (getattr(tarfile, "FilterError", None),) if error is not None
)

_ADJECTIVES = tuple(
    """
    amber ancient autumn bold brave breezy bright brisk calm candid clever cosmic crimson
    curious dapper daring dusky eager early electric fancy fearless fluffy frosty gentle
    gilded glad golden grand hasty humble icy jolly keen kind lively lucky lunar mellow
    merry misty modest nimble noble olive patient plucky polite quiet rapid rustic sandy
    shiny silent snowy sunny swift tidy velvet witty
    """.split()
)
_NOUNS = tuple(
    """
    anchor apple arrow badger beacon birch breeze brook cactus canyon comet cottage crane
    delta dune ember falcon fern fjord forest fox galaxy garden glacier harbor heron island
    juniper kettle lagoon lantern maple meadow meteor moss nebula oasis orchid otter pebble
    pine planet prairie quartz raven reef river saddle sparrow summit thistle thunder tulip
    valley violet walrus willow wombat yarrow zephyr
    """.split()
)


def model_file_name(
    fixed_model_name: str | None,
    prefix: str = "",
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> str:
    """File name for a newly trained model, following Rasa's conventions.

    Without a fixed name: ``<prefix><YYYYmmdd-HHMMSS>-<adjective>-<noun>.tar.gz`` in local
    time, so models sort chronologically and two trainings in the same second still get
    different names. A fixed name ending in ``.tar.gz`` is used verbatim (subdirectories
    included); any other fixed name has its last suffix replaced by ``.tar.gz`` and its
    directories dropped, exactly like ``Path(name).with_suffix(".tar.gz").name``.
    """
    if fixed_model_name:
        if fixed_model_name.endswith(ARCHIVE_SUFFIX):
            return fixed_model_name
        try:
            return Path(fixed_model_name).with_suffix(ARCHIVE_SUFFIX).name
        except ValueError as exc:
            raise TrainkitError(f"invalid fixed model name {fixed_model_name!r}") from exc
    moment = now if now is not None else datetime.now()
    chooser = rng if rng is not None else random.Random()
    return (
        f"{prefix}{moment:%Y%m%d-%H%M%S}-"
        f"{chooser.choice(_ADJECTIVES)}-{chooser.choice(_NOUNS)}{ARCHIVE_SUFFIX}"
    )


def _check_node_name(node: str) -> None:
    """Node names become one path component inside the archive; keep them to that."""
    if not node or node in (".", "..") or "/" in node or "\\" in node or "\x00" in node:
        raise ValueError(f"node name cannot be used as an archive directory: {node!r}")


def _iter_tree(root: Path, prefix: str) -> Iterator[tuple[str, Path | None]]:
    """Yield (archive name, file path or None for a directory) in sorted order."""
    with os.scandir(root) as scan:
        entries = sorted(scan, key=lambda entry: entry.name)
    for entry in entries:
        name = f"{prefix}/{entry.name}"
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISDIR(mode):
            yield name, None
            yield from _iter_tree(Path(entry.path), name)
        elif stat.S_ISREG(mode):
            yield name, Path(entry.path)
        else:
            raise ValueError(
                f"artifact may only contain regular files and directories: {entry.path}"
            )


def _member(name: str, directory: bool, size: int = 0) -> tarfile.TarInfo:
    """A tar header without timestamps or owners, so archives depend only on content."""
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if directory:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.type = tarfile.REGTYPE
        info.mode = 0o644
        info.size = size
    return info


def write_archive(path: Path, metadata: dict[str, Any], components: dict[str, Path]) -> Path:
    """Write ``metadata.json`` plus ``components/<node>/...`` to ``path`` atomically.

    Members are sorted and carry no timestamps or owners, and the gzip header has no
    name or time, so the same metadata and artifacts always give the same bytes.
    """
    path = Path(path)
    for node in components:
        _check_node_name(node)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrainkitError(f"cannot create the model directory {path.parent}: {exc.strerror or exc}") from exc
    metadata_bytes = (
        json.dumps(metadata, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    ).encode("utf-8")
    # The writer's pid in the name lets a later run tell a leftover of a killed process
    # from a file another process is still writing (`remove_leftovers`).
    temp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    try:
        # os.open with 0o666 lets the umask decide the final permissions, like a plain open.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise TrainkitError(f"cannot write the model archive {path}: {exc.strerror or exc}") from exc
    try:
        with (
            os.fdopen(fd, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as compressed,
            tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            tar.addfile(
                _member(METADATA_NAME, False, len(metadata_bytes)), io.BytesIO(metadata_bytes)
            )
            if components:
                tar.addfile(_member(COMPONENTS_DIR, True))
            for node in sorted(components):
                prefix = f"{COMPONENTS_DIR}/{node}"
                tar.addfile(_member(prefix, True))
                for name, file_path in _iter_tree(Path(components[node]), prefix):
                    if file_path is None:
                        tar.addfile(_member(name, True))
                        continue
                    with open(file_path, "rb") as handle:
                        size = os.fstat(handle.fileno()).st_size
                        tar.addfile(_member(name, False, size), handle)
            compressed.flush()
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(temp, path)
    except OSError as exc:  # a full disk, a read-only directory: one clear line, nothing left
        temp.unlink(missing_ok=True)
        raise TrainkitError(f"cannot write the model archive {path}: {exc.strerror or exc}") from exc
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path


def _unsafe_reason(
    member: tarfile.TarInfo, target: Path, checked: dict[str, bool] | None = None
) -> str | None:
    """Why ``member`` must not be extracted into ``target``, or None if it is fine.

    ``checked`` remembers, for one extraction, which directories resolve inside ``target``.
    """
    name = member.name
    if not name or "\x00" in name:
        return "has an empty or invalid name"
    if (
        name.startswith(("/", "\\"))
        or PurePosixPath(name).is_absolute()
        or (len(name) > 1 and name[1] == ":")
    ):
        return "has an absolute path"
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        return "escapes the target directory with '..'"
    if member.issym():
        return "is a symbolic link"
    if member.islnk():
        return "is a hard link"
    if member.isdev():
        return "is a device or FIFO"
    if not (member.isfile() or member.isdir()):
        return "is not a regular file or directory"
    # Only the directory part can pass through a symlink already in `target`; members of
    # one directory share the answer (an archive may hold thousands of them).
    directory = posixpath.dirname(posixpath.normpath(name))
    inside = checked.get(directory) if checked is not None else None
    if inside is None:
        resolved = (target / directory).resolve() if directory else target
        inside = resolved == target or target in resolved.parents
        if checked is not None:
            checked[directory] = inside
    if not inside:
        return "resolves outside the target directory"
    return None


MAX_MEMBERS_ENV = "TRAINKIT_ARCHIVE_MAX_MEMBERS"
MAX_MEMBER_SIZE_ENV = "TRAINKIT_ARCHIVE_MAX_MEMBER_SIZE"
MAX_TOTAL_SIZE_ENV = "TRAINKIT_ARCHIVE_MAX_TOTAL_SIZE"
MAX_METADATA_SIZE_ENV = "TRAINKIT_ARCHIVE_MAX_METADATA_SIZE"


@dataclass(frozen=True)
class ArchiveLimits:
    """How much an archive may ask of the machine that unpacks it.

    The defaults sit far above any model trainkit writes (a large DIET model is tens of
    MB in a few dozen files) but far below what would fill a disk or exhaust memory, so a
    hostile or broken archive is refused from its tar headers alone, before anything is
    written or read into memory.
    """

    max_members: int = 10_000
    max_member_size: int = 1024**3
    max_total_size: int = 4 * 1024**3
    max_metadata_size: int = 64 * 1024**2

    @classmethod
    def from_environment(cls) -> ArchiveLimits:
        """The defaults, overridden by ``TRAINKIT_ARCHIVE_MAX_*`` variables where set.

        Sizes read like the cache size (``500`` is MiB, ``2G``, ``1.5GiB``); the member
        count is a plain number.
        """
        defaults = cls()
        count_text = os.environ.get(MAX_MEMBERS_ENV, "").strip()
        max_members = defaults.max_members
        if count_text:
            if not count_text.isdigit() or int(count_text) < 1:
                raise TrainkitError(f"{MAX_MEMBERS_ENV}={count_text!r} is not a positive whole number")
            max_members = int(count_text)
        return cls(
            max_members=max_members,
            max_member_size=_size_from_environment(MAX_MEMBER_SIZE_ENV, defaults.max_member_size),
            max_total_size=_size_from_environment(MAX_TOTAL_SIZE_ENV, defaults.max_total_size),
            max_metadata_size=_size_from_environment(
                MAX_METADATA_SIZE_ENV, defaults.max_metadata_size
            ),
        )


def _size_from_environment(variable: str, default: int) -> int:
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    try:
        size = parse_size(text)
    except TrainkitError:
        size = -1
    if size is None or size <= 0:
        raise TrainkitError(
            f"{variable}={text!r} is not a size; use e.g. 500 (MiB), 800M or 2G"
        )
    return size


def _over_limit(member: tarfile.TarInfo, total: int, count: int, limits: ArchiveLimits) -> str | None:
    """Why the archive must be refused at ``member`` (its ``count``-th), or None."""
    if count > limits.max_members:
        return f"has more than {limits.max_members} members ({MAX_MEMBERS_ENV})"
    name = member.name.removeprefix("./")
    if name == METADATA_NAME and member.size > limits.max_metadata_size:
        return (
            f"has a member {METADATA_NAME!r} of {member.size} bytes, over the limit of "
            f"{limits.max_metadata_size} ({MAX_METADATA_SIZE_ENV})"
        )
    if member.size > limits.max_member_size:
        return (
            f"has a member {name!r} of {member.size} bytes, over the limit of "
            f"{limits.max_member_size} ({MAX_MEMBER_SIZE_ENV})"
        )
    if total > limits.max_total_size:
        return (
            f"holds more than {limits.max_total_size} bytes in total ({MAX_TOTAL_SIZE_ENV})"
        )
    return None


def _checked_members(
    tar: tarfile.TarFile, path: Path, root: Path, limits: ArchiveLimits
) -> list[tarfile.TarInfo]:
    """Every member of ``tar``, refusing the archive at the first header over a limit.

    Headers are read one at a time so an oversized member is refused before its data is
    decompressed, and a huge member count before all of it is held in memory.
    """
    members: list[tarfile.TarInfo] = []
    checked: dict[str, bool] = {}
    total = 0
    while (member := tar.next()) is not None:
        members.append(member)
        total += member.size
        excess = _over_limit(member, total, len(members), limits)
        if excess is not None:
            raise TrainkitError(f"refusing to extract {path}: it {excess}")
        reason = _unsafe_reason(member, root, checked)
        if reason is not None:
            raise TrainkitError(f"refusing to extract {path}: member {member.name!r} {reason}")
    return members


def extract_archive(path: Path, target: Path, limits: ArchiveLimits | None = None) -> Path:
    """Unpack a model archive into ``target``, refusing anything unsafe or too large.

    Every member is checked before the first byte is written, so a malicious archive
    leaves ``target`` untouched. Python's ``data`` extraction filter is applied on top
    where available (it also strips set-uid bits and odd permissions). ``limits``
    defaults to :meth:`ArchiveLimits.from_environment`.
    """
    path = Path(path)
    target = Path(target)
    limits = limits if limits is not None else ArchiveLimits.from_environment()
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    try:
        with tarfile.open(path, mode="r:*") as tar:
            members = _checked_members(tar, path, root, limits)
            if hasattr(tarfile, "data_filter"):
                tar.extractall(root, members=members, filter="data")
            else:  # pragma: no cover - Python without extraction filters
                tar.extractall(root, members=members)
    except _FILTER_ERRORS as exc:
        raise TrainkitError(f"refusing to extract {path}: {exc}") from exc
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        if isinstance(exc, FileNotFoundError) and not path.exists():
            raise TrainkitError(f"model archive not found: {path}") from exc
        raise TrainkitError(f"cannot extract model archive {path}: {_describe(exc)}") from exc
    return target


def _describe(exc: BaseException) -> str:
    """A one-line reason for a low-level read error (some carry an empty message)."""
    text = str(exc).strip()
    if isinstance(exc, EOFError) or not text:
        return "the file is truncated or empty"
    return text


def read_metadata(path: Path, limits: ArchiveLimits | None = None) -> dict[str, Any]:
    """Read ``metadata.json`` without unpacking the (possibly large) components.

    ``metadata.json`` is the first member of archives written here, so only the start of
    the file is decompressed; its size is checked against the limits before it is read.
    """
    path = Path(path)
    limits = limits if limits is not None else ArchiveLimits.from_environment()
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for member in tar:
                if member.name.removeprefix("./") == METADATA_NAME and member.isfile():
                    if member.size > limits.max_metadata_size:
                        raise TrainkitError(
                            f"refusing to read {path}: member {METADATA_NAME!r} has "
                            f"{member.size} bytes, over the limit of {limits.max_metadata_size} "
                            f"({MAX_METADATA_SIZE_ENV})"
                        )
                    handle = tar.extractfile(member)
                    if handle is None:  # pragma: no cover - isfile() guarantees a handle
                        break
                    return parse_metadata(handle.read(), path)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise TrainkitError(f"cannot read model archive {path}: {_describe(exc)}") from exc
    raise TrainkitError(f"{path} is not a trainkit model: it has no {METADATA_NAME}")


def parse_metadata(data: bytes, path: Path) -> dict[str, Any]:
    """The JSON object in ``metadata.json``; anything else is an error naming the member."""
    try:
        metadata = json.loads(data.decode("utf-8"))
    except ValueError as exc:  # bad UTF-8, bad JSON, or a number Python refuses to convert
        raise TrainkitError(f"{path}: member {METADATA_NAME!r} is not valid JSON: {exc}") from None
    except RecursionError:
        raise TrainkitError(f"{path}: member {METADATA_NAME!r} is not valid JSON: nested too deeply") from None
    if not isinstance(metadata, dict):
        raise TrainkitError(f"{path}: member {METADATA_NAME!r} must be a JSON object")
    return metadata


def latest_model(directory: Path) -> Path | None:
    """The most recently written ``*.tar.gz`` in ``directory`` (ties broken by name)."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    candidates = [p for p in directory.glob(f"*{ARCHIVE_SUFFIX}") if p.is_file()]
    if not candidates:
        return None
    return max(candidates, key=lambda p: (p.stat().st_mtime_ns, p.name))


_TEMP_NAME = re.compile(r"^\.(?P<name>.+\.tar\.gz)\.(?:(?P<pid>\d+)\.)?[0-9a-f]{32}\.tmp$")
# A temp file without a pid (older trainkit) is a leftover once nothing can still be
# writing it; no model takes this long to write.
_ANONYMOUS_TEMP_AGE_SECONDS = 3600.0


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def remove_leftovers(directory: Path) -> list[Path]:
    """Delete temp archives that killed writers left in ``directory``; returns them.

    Only files named the way :func:`write_archive` names its temp files are considered,
    and only when the process that wrote them is gone, so a concurrent writer is safe.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    now = time.time()
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        pid = match.group("pid")
        if pid is not None:
            leftover = not _process_alive(int(pid))
        else:
            try:
                leftover = now - entry.stat(follow_symlinks=False).st_mtime > _ANONYMOUS_TEMP_AGE_SECONDS
            except FileNotFoundError:
                continue
        if leftover:
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            removed.append(Path(entry.path))
    return removed


@dataclass
class ArchiveContents:
    """What a full read of an archive found: its metadata and each component's digest."""

    metadata: dict[str, Any]
    components: dict[str, str]


def scan_archive(path: Path, limits: ArchiveLimits | None = None) -> ArchiveContents:
    """Read a whole archive, proving it intact, and digest every component directory.

    Reading to the end checks the gzip CRC and length, so truncation and flipped bits are
    caught; the component digests are those of :func:`~trainkit.engine.fingerprint.digest_dir`,
    so they compare directly with the cache's. Memory stays bounded (files are hashed in
    chunks, headers are held to the same limits as extraction). Any damage is a
    :class:`TrainkitError` saying what is wrong.
    """
    path = Path(path)
    limits = limits if limits is not None else ArchiveLimits.from_environment()
    metadata: dict[str, Any] | None = None
    trees: dict[str, list[tuple[str, str, str]]] = {}
    count = total = 0
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            while (member := tar.next()) is not None:
                count += 1
                total += member.size
                excess = _over_limit(member, total, count, limits)
                if excess is not None:
                    raise TrainkitError(f"refusing to read {path}: it {excess}")
                name = member.name.removeprefix("./")
                if name == METADATA_NAME and member.isfile():
                    handle = tar.extractfile(member)
                    metadata = parse_metadata(handle.read(), path) if handle else None
                    continue
                parts = name.split("/")
                if parts[0] != COMPONENTS_DIR or len(parts) < 2:
                    continue
                node, relative = parts[1], "/".join(parts[2:])
                tree = trees.setdefault(node, [])
                if not relative:
                    continue
                if member.isdir():
                    tree.append((relative, "dir", ""))
                elif member.isfile():
                    hasher = xxhash.xxh3_128()
                    handle = tar.extractfile(member)
                    while handle is not None and (chunk := handle.read(1 << 20)):
                        hasher.update(chunk)
                    tree.append((relative, "file", hasher.hexdigest()))
                else:
                    raise TrainkitError(f"{path}: member {member.name!r} is not a regular file or directory")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise TrainkitError(f"model archive {path} is damaged: {_describe(exc)}") from exc
    if metadata is None:
        raise TrainkitError(f"{path} is not a trainkit model: it has no {METADATA_NAME}")
    return ArchiveContents(metadata, {node: digest_entries(tree) for node, tree in trees.items()})
