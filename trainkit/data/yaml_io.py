"""YAML loading that remembers where things came from.

ruamel's round-trip loader keeps line numbers on every mapping and sequence, which is
what lets each error name the file and line a user has to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from trainkit.data.paths import YAML_SUFFIXES  # noqa: F401  (readers import it from here)
from trainkit.errors import DataError

# Training data format versions this reader understands (Rasa 2.0 up to 3.1).
SUPPORTED_VERSIONS = ("2.0", "3.0", "3.1")


def read_text(path: str | Path) -> str:
    """Read a file as UTF-8 text, refusing binary or mis-encoded files with a clear error."""
    path = Path(path)
    if not path.exists():
        raise DataError("file does not exist", path)
    if path.is_dir():
        raise DataError("expected a file but found a directory", path)
    raw = path.read_bytes()
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise DataError("binary file (contains a NUL byte); expected UTF-8 YAML text", path, line)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})", path, line
        ) from None
    return text.removeprefix("\ufeff")


def _loader() -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    return yaml


def load_yaml(path: str | Path) -> Any:
    """Parse one YAML file; syntax errors become a DataError with the offending line."""
    text = read_text(path)
    return parse_yaml(text, path)


def parse_yaml(text: str, path: str | Path) -> Any:
    """Parse YAML text that came from `path` (used for the line numbers in errors)."""
    try:
        return _loader().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = exc.problem or exc.context or "invalid YAML"
        raise DataError(f"YAML syntax error: {what}", path, line) from None
    except YAMLError as exc:
        raise DataError(f"YAML syntax error: {exc}", path) from None


def line_of(node: Any, key: Any = None, index: int | None = None) -> int | None:
    """1-based line of a mapping/sequence, of one key in a mapping, or of one list item."""
    try:
        if key is not None and isinstance(node, CommentedMap):
            return node.lc.key(key)[0] + 1
        if index is not None and isinstance(node, CommentedSeq):
            return node.lc.item(index)[0] + 1
        if isinstance(node, (CommentedMap, CommentedSeq)):
            return node.lc.line + 1
    except (KeyError, IndexError, AttributeError, TypeError):
        return None
    return None


def value_line(node: Any, key: Any) -> int | None:
    """1-based line where the value of `key` starts (block scalars start on the next line)."""
    try:
        return node.lc.value(key)[0] + 1
    except (KeyError, AttributeError, TypeError):
        return line_of(node, key)


def to_plain(node: Any) -> Any:
    """Turn ruamel's commented containers into plain dicts, lists and scalars."""
    if isinstance(node, dict):
        return {str(k) if not isinstance(k, (int, float, bool)) else k: to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


def check_version(document: Any, path: str | Path) -> None:
    """Refuse a training-data `version` newer than (or unknown to) the Rasa 3.x format."""
    if not isinstance(document, dict) or "version" not in document:
        return
    version = document["version"]
    if str(version) not in SUPPORTED_VERSIONS:
        raise DataError(
            f"unsupported training data format version {version!r}; "
            f"supported: {', '.join(SUPPORTED_VERSIONS)}",
            path,
            line_of(document, "version"),
        )


def expect_mapping(node: Any, path: str | Path, what: str, line: int | None = None) -> dict:
    """Check that a YAML node is a mapping, or raise an error naming `what`."""
    if not isinstance(node, dict):
        raise DataError(f"{what} must be a mapping, got {type_name(node)}", path, line or line_of(node))
    return node


def expect_list(node: Any, path: str | Path, what: str, line: int | None = None) -> list:
    """Check that a YAML node is a list, or raise an error naming `what`."""
    if not isinstance(node, list):
        raise DataError(f"{what} must be a list, got {type_name(node)}", path, line or line_of(node))
    return node


def type_name(node: Any) -> str:
    """A YAML-ish name for a Python value's type, for error messages."""
    if node is None:
        return "null"
    if isinstance(node, dict):
        return "a mapping"
    if isinstance(node, list):
        return "a list"
    if isinstance(node, bool):
        return "a boolean"
    if isinstance(node, (int, float)):
        return "a number"
    if isinstance(node, str):
        return "a string"
    return type(node).__name__
