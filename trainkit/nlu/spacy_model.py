"""Finding, identifying and loading an installed spaCy pipeline.

A spaCy pipeline is an outside resource: it is never copied into a model archive (that
holds JSON and `.npz` only), so what a node's output depends on is the pipeline's
*content*. `pipeline_digest` digests every file of the pipeline directory (its
`meta.json`, vectors, tokenizer rules and component weights); per-file digests are
remembered per process under the file's size, mtime and inode, so planning a build
re-reads nothing that did not change. Locating the pipeline needs no spaCy import, so a
config that names a missing pipeline is refused quickly, before anything trains.
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainkit.engine.fingerprint import digest_file, fingerprint
from trainkit.errors import ConfigError

ALTERNATIVE = "or use WhitespaceTokenizer with CountVectorsFeaturizer (word and char_wb) instead"
INSTALL_SPACY = "install it with pip install 'trainkit[spacy]'"
# Files Python writes next to an installed pipeline package when it is imported.
_SKIPPED_DIRS = frozenset({"__pycache__"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


def spacy_installed() -> bool:
    """Whether `import spacy` would work (without importing it: that takes a second)."""
    try:
        return importlib.util.find_spec("spacy") is not None
    except (ImportError, ValueError):
        return False


def require_spacy(component: str) -> None:
    """Refuse to build a spaCy component when spaCy itself is missing."""
    if not spacy_installed():
        raise ConfigError(f"{component} needs the 'spacy' package, which is not installed; {INSTALL_SPACY}, "
                          f"{ALTERNATIVE}")


def _package_directory(name: str) -> Path | None:
    """The directory of an installed pipeline package such as `en_core_web_md`."""
    if not name.isidentifier():
        return None
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _data_directory(root: Path) -> Path | None:
    """Where `config.cfg` and `meta.json` are: the directory itself, or the versioned
    subdirectory a pipeline package keeps them in."""
    if (root / "config.cfg").is_file():
        return root
    candidates = sorted(p.parent for p in root.glob("*/config.cfg"))
    return candidates[0] if candidates else None


def locate_pipeline(model: str | None, component: str = "SpacyNLP") -> Path:
    """The directory spaCy loads `model` from: a pipeline directory or an installed package.

    A relative path is taken from the working directory, as `spacy.load` takes it.
    """
    if not model:
        raise ConfigError(f"{component} needs 'model': the name of an installed spaCy pipeline package "
                          "(such as en_core_web_md) or the path of a pipeline directory")
    package = _package_directory(model)  # an installed package comes first, as in spacy.load
    if package is not None and _data_directory(package) is not None:
        return package
    path = Path(model).expanduser()
    if path.is_dir():
        if _data_directory(path) is None:
            raise ConfigError(f"{component}: '{model}' is a directory but not a spaCy pipeline (it has no config.cfg); "
                              "save a pipeline there with nlp.to_disk")
        return path
    if not model.isidentifier():
        raise ConfigError(f"{component} needs the spaCy pipeline directory '{model}', which does not exist; save a "
                          f"pipeline there with nlp.to_disk, or name an installed pipeline package, {ALTERNATIVE}")
    raise ConfigError(
        f"{component} needs the spaCy pipeline '{model}', which is not installed; install it with "
        f"python -m spacy download {model}, or set 'model' to the path of a saved pipeline directory, "
        f"{ALTERNATIVE}"
    )


_file_digests: dict[str, tuple[tuple[int, int, int], str]] = {}
_digests_lock = threading.Lock()


def _file_digest(path: str) -> str:
    status = os.stat(path)
    key = (status.st_size, status.st_mtime_ns, status.st_ino)
    with _digests_lock:
        known = _file_digests.get(path)
    if known is not None and known[0] == key:
        return known[1]
    digest = digest_file(path)
    with _digests_lock:
        _file_digests[path] = (key, digest)
    return digest


def pipeline_digest(root: Path) -> str:
    """Digest of a pipeline's content: every file below `root` by relative path."""
    entries: list[tuple[str, str]] = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
        for name in sorted(files):
            if name.endswith(_SKIPPED_SUFFIXES):
                continue
            path = os.path.join(directory, name)
            entries.append((Path(path).relative_to(root).as_posix(), _file_digest(path)))
    return fingerprint(["spacy-pipeline", entries])


@dataclass(frozen=True)
class PipelineIdentity:
    """Which spaCy pipeline a model was built with (recorded in the model, never its files)."""

    name: str
    version: str
    digest: str

    def describe(self) -> str:
        """How an error message names it."""
        return f"{self.name} {self.version}".strip()

    def as_dict(self) -> dict[str, str]:
        """The JSON the SpacyNLP node writes."""
        return {"name": self.name, "version": self.version, "digest": self.digest}


def pipeline_meta(root: Path) -> dict[str, Any]:
    """The pipeline's meta.json (name, version, vectors), or {} if it has none."""
    data = _data_directory(root) or root
    try:
        meta: Any = json.loads((data / "meta.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def declared_vector_width(root: Path) -> int | None:
    """The word-vector width meta.json declares, None when it does not say."""
    vectors = pipeline_meta(root).get("vectors")
    width = vectors.get("width") if isinstance(vectors, dict) else None
    return width if isinstance(width, int) else None


def pipeline_identity(root: Path) -> PipelineIdentity:
    """Name and version from the pipeline's meta.json, and its content digest."""
    meta = pipeline_meta(root)
    name = "_".join(str(meta[k]) for k in ("lang", "name") if meta.get(k))
    return PipelineIdentity(name or root.name, str(meta.get("version", "")), pipeline_digest(root))


_loaded: dict[tuple[str, str], Any] = {}
_load_lock = threading.Lock()


def load_pipeline(root: Path) -> Any:
    """The spaCy `Language` saved at `root`, loaded once per process and content."""
    key = (str(root.resolve()), pipeline_digest(root))
    with _load_lock:
        nlp = _loaded.get(key)
        if nlp is None:
            import spacy

            try:
                nlp = spacy.load(_data_directory(root) or root)
            except (OSError, ValueError, KeyError) as exc:
                raise ConfigError(f"the spaCy pipeline at '{root}' cannot be loaded: {exc}") from None
            _loaded[key] = nlp
        return nlp
