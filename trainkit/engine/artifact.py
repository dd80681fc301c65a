"""Node outputs on disk: a directory of JSON and .npz files.

Artifacts are the unit the cache stores and digests, so writing them must be
byte-deterministic: the same content always gives the same bytes. That is what makes
early cutoff work. `np.savez` stamps the current time into its zip entries, so arrays are
written through our own zip writer with a fixed timestamp.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from trainkit.errors import TrainkitError

_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def dump_json(obj: Any) -> bytes:
    """Deterministic JSON bytes: sorted keys, UTF-8, trailing newline."""
    return (json.dumps(obj, sort_keys=True, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write arrays as an .npz whose bytes depend only on the arrays."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(arrays):
            array = np.asarray(arrays[name])
            if array.dtype == object:
                raise TypeError(f"array '{name}' has dtype object; only plain numeric/str arrays are stored")
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue())


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Load every array of an .npz eagerly, never unpickling."""
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


class ArtifactError(TrainkitError):
    """A file of an artifact is missing or unreadable (damaged or hostile model)."""


class Artifact:
    """Read-only view of one node's output directory.

    Reads never let a damaged file escape as a low-level exception: a missing file,
    invalid JSON or an .npz that is not plain arrays becomes an `ArtifactError` naming
    the file as `label/<name>` (the member name inside a model archive). The last file
    files read are remembered so that a component which finds unexpected content in them
    can be reported against those files.
    """

    def __init__(self, path: Path, label: str | None = None) -> None:
        self.path = Path(path)
        self.label = label if label is not None else str(self.path)
        self.read: list[str] = []

    def member(self, name: str) -> str:
        """How the file `name` is named in messages."""
        return f"{self.label}/{name}"

    def has(self, name: str) -> bool:
        """Whether the artifact holds a file called `name`."""
        return (self.path / name).is_file()

    def _require(self, name: str) -> Path:
        if name not in self.read:
            self.read.append(name)
        path = self.path / name
        if not path.is_file():
            raise ArtifactError(f"{self.member(name)} is missing")
        return path

    def json(self, name: str) -> Any:
        """Parse one JSON file of the artifact."""
        path = self._require(name)
        try:
            return json.loads(path.read_bytes().decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # bad UTF-8/JSON, unconvertible numbers
            reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
            raise ArtifactError(f"{self.member(name)} is not valid JSON: {reason}") from None
        except OSError as exc:
            raise ArtifactError(f"{self.member(name)} cannot be read: {exc.strerror or exc}") from None

    def arrays(self, name: str) -> dict[str, np.ndarray]:
        """Load one .npz file of the artifact.

        A few KB of deflated zeros can expand to gigabytes, so the arrays' declared sizes
        are checked first: an .npz may not expand beyond what one archive member may
        hold (`ArchiveLimits.max_member_size`).
        """
        from trainkit.engine.archive import MAX_MEMBER_SIZE_ENV, ArchiveLimits

        path = self._require(name)
        limit = ArchiveLimits.from_environment().max_member_size
        try:
            with zipfile.ZipFile(path) as archive:
                expanded = sum(info.file_size for info in archive.infolist())
        except (OSError, zipfile.BadZipFile, ValueError) as exc:
            raise ArtifactError(f"{self.member(name)} is not a valid .npz of plain arrays: {exc}") from None
        if expanded > limit:
            raise ArtifactError(
                f"{self.member(name)} expands to {expanded} bytes, over the limit of {limit} "
                f"({MAX_MEMBER_SIZE_ENV})"
            )
        try:
            return read_npz(path)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
            raise ArtifactError(f"{self.member(name)} is not a valid .npz of plain arrays: {exc}") from None

    def __repr__(self) -> str:
        return f"Artifact({str(self.path)!r})"


class ArtifactWriter:
    """Write side of an artifact: JSON and npz files into a fresh directory.

    A write that fails (disk full, read-only) removes the partial file and raises an
    `ArtifactError` naming it, so no half-written file is ever mistaken for output.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    def _failed(self, name: str, exc: OSError) -> ArtifactError:
        (self.path / name).unlink(missing_ok=True)
        return ArtifactError(f"cannot write {self.path / name}: {exc.strerror or exc}")

    def json(self, name: str, obj: Any) -> None:
        """Store `obj` as deterministic JSON."""
        try:
            (self.path / name).write_bytes(dump_json(obj))
        except OSError as exc:
            raise self._failed(name, exc) from None

    def arrays(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        """Store named arrays as a deterministic .npz."""
        try:
            write_npz(self.path / name, arrays)
        except OSError as exc:
            raise self._failed(name, exc) from None
