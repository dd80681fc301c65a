"""Finetuning bases verified before, so planning an unchanged base extracts nothing.

Planning a finetune checks the base archive: it is extracted (bounded, as any untrusted
archive), its metadata read and each finetuned node's output digested and compared with
the digest the metadata records. Under doit the plan is made on every invocation, so
without a memory every `doit list` or `doit train` would unpack the whole model again.

What was verified is kept in `.trainkit/finetune-bases.json` under the archive's content
digest, with its path, size and mtime_ns for the record. The content digest (xxh3, read
at disk speed) is computed on every plan: it costs a read of the file, where extraction
costs a read, a decompression and a write of every member, and it is what makes the
memory safe: an archive rewritten in place, even with the same size and mtime, has
another digest and is verified from scratch. A touched archive with the same bytes is
recognised as the one verified.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trainkit.engine.atomic import write_json_atomic
from trainkit.engine.fingerprint import digest_file

MEMO_FILE = "finetune-bases.json"
# Bases are few (the models a project finetunes from); the oldest are forgotten first.
MAX_ENTRIES = 8
FORMAT = 1


@dataclass(frozen=True)
class ArchiveIdentity:
    """Which archive file, and which bytes, a verification was made on."""

    path: str
    size: int
    mtime_ns: int
    digest: str

    @classmethod
    def of(cls, path: Path) -> ArchiveIdentity:
        """Stat and digest the archive now."""
        status = os.stat(path)
        return cls(str(Path(path).absolute()), status.st_size, status.st_mtime_ns, digest_file(path))


@dataclass
class VerifiedBase:
    """A base archive's metadata and the node outputs found to match what it records."""

    identity: ArchiveIdentity
    metadata: dict[str, Any]
    outputs: dict[str, str] = field(default_factory=dict)


class VerifiedBases:
    """The memo file of a project's state directory."""

    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir) / MEMO_FILE

    def _entries(self) -> list[dict[str, Any]]:
        """The stored entries, or none when the file is missing or not ours (never trusted
        beyond its own shape: a damaged memo only means verifying again)."""
        try:
            stored = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            return []
        if not isinstance(stored, dict) or stored.get("format") != FORMAT or not isinstance(stored.get("bases"), list):
            return []
        return [entry for entry in stored["bases"] if isinstance(entry, dict)]

    def lookup(self, identity: ArchiveIdentity) -> VerifiedBase | None:
        """What was verified of an archive with these bytes, if anything."""
        for entry in self._entries():
            recorded = entry.get("identity")
            if not isinstance(recorded, dict) or recorded.get("digest") != identity.digest:
                continue
            metadata, outputs = entry.get("metadata"), entry.get("outputs")
            if isinstance(metadata, dict) and isinstance(outputs, dict):
                return VerifiedBase(identity, metadata, {str(k): str(v) for k, v in outputs.items()})
        return None

    def remember(self, verified: VerifiedBase) -> None:
        """Record a verification (newest first, at most MAX_ENTRIES bases)."""
        entry = {"identity": asdict(verified.identity), "metadata": verified.metadata, "outputs": verified.outputs}
        others = [e for e in self._entries()
                  if not isinstance(e.get("identity"), dict) or e["identity"].get("digest") != verified.identity.digest]
        try:
            write_json_atomic(self.path, {"format": FORMAT, "bases": [entry, *others][:MAX_ENTRIES]})
        except OSError:
            pass  # a read-only state directory only means verifying again next time
