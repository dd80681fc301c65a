"""YAML loading that remembers where things came from, and refuses hostile documents.

ruamel's round-trip loader keeps line numbers on every mapping and sequence, which is
what lets each error name the file and line a user has to fix.

Project files come from anyone, so reading is bounded before it can hang or exhaust
memory: the file size and the longest line are checked before parsing, and while the
document is composed the nesting depth and the size aliases expand to are counted (a
"billion laughs" document is a few hundred bytes whose aliases expand to 10^9 nodes
when turned into plain data). Every bound is generous for real assistants and can be
raised through the environment.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
from ruamel.yaml.scanner import RoundTripScanner

from trainkit.data.paths import YAML_SUFFIXES  # noqa: F401  (readers import it from here)
from trainkit.errors import DataError

# Training data format versions this reader understands (Rasa 2.0 up to 3.1).
SUPPORTED_VERSIONS = ("2.0", "3.0", "3.1")


@dataclass(frozen=True)
class YamlLimits:
    """Bounds on one YAML file; each is far above what an assistant's files need."""

    max_file_size: int = 64 * 1024**2  # bytes
    max_line_length: int = 1024**2  # characters
    max_depth: int = 100  # nested mappings/sequences
    # Aliases may add this many nodes, plus 10 per node actually written, when expanded.
    max_alias_expansion: int = 100_000

    @classmethod
    def from_environment(cls) -> YamlLimits:
        """The defaults, overridden by `TRAINKIT_YAML_MAX_<FIELD>` (whole numbers)."""
        values: dict[str, int] = {}
        for field in fields(cls):
            variable = f"TRAINKIT_YAML_{field.name.upper()}"
            text = os.environ.get(variable, "").strip()
            if text:
                if not text.isdigit() or int(text) < 1:
                    raise DataError(f"{variable}={text!r} is not a positive whole number")
                values[field.name] = int(text)
        return cls(**values)


def _check_lines(text: str, path: str | Path, limit: int) -> None:
    """Refuse a line longer than `limit` characters (ruamel is slow on such lines)."""
    start = 0
    line = 1
    while start < len(text):
        end = text.find("\n", start)
        if end < 0:
            end = len(text)
        if end - start > limit:
            raise DataError(
                f"line has {end - start} characters, more than the limit of {limit} "
                "(TRAINKIT_YAML_MAX_LINE_LENGTH)",
                path,
                line,
            )
        start = end + 1
        line += 1


def read_text(path: str | Path, limits: YamlLimits | None = None) -> str:
    """Read a file as UTF-8 text, refusing binary, mis-encoded or oversized files."""
    path = Path(path)
    if not path.exists():
        raise DataError("file does not exist", path)
    if path.is_dir():
        raise DataError("expected a file but found a directory", path)
    limits = limits if limits is not None else YamlLimits.from_environment()
    size = path.stat().st_size
    if size > limits.max_file_size:
        raise DataError(
            f"file has {size} bytes, more than the limit of {limits.max_file_size} "
            "(TRAINKIT_YAML_MAX_FILE_SIZE)",
            path,
        )
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


class _LimitExceeded(Exception):
    """Raised inside the composer; turned into a DataError with the file's path."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


_SURROGATE = re.compile("[\ud800-\udfff]")


def _joined_surrogates(value: str, line: int) -> str:
    """A scalar with `\\uD83D\\uDE00`-style escapes, as JSON writers produce for
    characters beyond the basic plane: YAML keeps each half as a lone surrogate, which
    no later step could encode, so pairs become the character they encode and a half
    without its partner is refused."""
    try:
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    except UnicodeDecodeError:
        raise _LimitExceeded(
            "a string holds an escaped UTF-16 surrogate (\\ud800-\\udfff) without its pair; "
            "write the character itself or its \\U0001XXXX escape", line) from None


class _BoundedComposer(Composer):
    """ruamel's composer, counting nesting depth and the size aliases expand to.

    The expanded size of every node is computed once, when it is composed, from its
    children's (an alias reuses its anchor's), so the count costs time linear in the
    text even when the expansion is exponential.
    """

    limits = YamlLimits()

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader=loader)
        self._nesting = 0
        self._written = 0
        self._expanded: dict[int, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        self._nesting += 1
        try:
            if self._nesting > self.limits.max_depth:
                raise _LimitExceeded(
                    f"YAML nested deeper than {self.limits.max_depth} levels "
                    "(TRAINKIT_YAML_MAX_DEPTH)",
                    event.start_mark.line + 1,
                )
            node = super().compose_node(parent, index)
        finally:
            self._nesting -= 1
        if isinstance(node, ScalarNode) and isinstance(node.value, str) and _SURROGATE.search(node.value):
            node.value = _joined_surrogates(node.value, node.start_mark.line + 1)
        key = id(node)
        if key in self._expanded:  # an alias, or a node already counted
            return node
        self._written += 1
        size = 1
        if isinstance(node, SequenceNode):
            size += sum(self._expanded.get(id(child), 1) for child in node.value)
        elif isinstance(node, MappingNode):
            size += sum(
                self._expanded.get(id(k), 1) + self._expanded.get(id(v), 1) for k, v in node.value
            )
        self._expanded[key] = size
        bound = 10 * self._written + self.limits.max_alias_expansion
        if size > bound:
            raise _LimitExceeded(
                f"YAML aliases expand to more than {bound} nodes; refusing a document that "
                "grows this much when its aliases are resolved "
                "(TRAINKIT_YAML_MAX_ALIAS_EXPANSION)",
                node.start_mark.line + 1,
            )
        return node


class _BoundedScanner(RoundTripScanner):
    """ruamel's scanner, refusing flow collections (`[`, `{`) nested past the depth bound.

    Checked here rather than only in the composer because the scanner looks ahead over
    open flow collections and its cost grows with their nesting: 10,000 `[` on one line
    take seconds before the first node is composed.
    """

    limits = YamlLimits()

    def fetch_flow_collection_start(self, TokenClass: Any, to_push: str) -> None:  # noqa: N803
        if self.flow_level >= self.limits.max_depth:
            raise _LimitExceeded(
                f"YAML nested deeper than {self.limits.max_depth} levels (TRAINKIT_YAML_MAX_DEPTH)",
                self.reader.get_mark().line + 1,
            )
        super().fetch_flow_collection_start(TokenClass, to_push)


_HUGE_NUMBER = re.compile(r"[0-9_]{4000,}")


def _loader(limits: YamlLimits) -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    yaml.Scanner = type("BoundedScanner", (_BoundedScanner,), {"limits": limits})
    yaml.Composer = type("BoundedComposer", (_BoundedComposer,), {"limits": limits})
    return yaml


def load_yaml(path: str | Path, limits: YamlLimits | None = None) -> Any:
    """Parse one YAML file; syntax errors become a DataError with the offending line."""
    limits = limits if limits is not None else YamlLimits.from_environment()
    text = read_text(path, limits)
    return parse_yaml(text, path, limits)


def parse_yaml(text: str, path: str | Path, limits: YamlLimits | None = None) -> Any:
    """Parse YAML text that came from `path` (used for the line numbers in errors)."""
    limits = limits if limits is not None else YamlLimits.from_environment()
    _check_lines(text, path, limits.max_line_length)
    try:
        return _loader(limits).load(text)
    except _LimitExceeded as exc:
        raise DataError(str(exc), path, exc.line) from None
    except RecursionError:
        raise DataError("YAML nested too deeply to read", path) from None
    except (ValueError, OverflowError) as exc:
        # ruamel converts scalars with Python's int()/float(), which refuse e.g. integers
        # of more than 4300 digits; it gives no position, so find the long number.
        huge = _HUGE_NUMBER.search(text)
        line = text.count("\n", 0, huge.start()) + 1 if huge else None
        raise DataError(f"YAML value cannot be read: {exc}", path, line) from None
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
