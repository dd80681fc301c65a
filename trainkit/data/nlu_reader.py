"""Reader for the `nlu:` part of Rasa 3.x YAML training data files.

It yields the same examples, synonyms, regexes and lookup tables Rasa 3.6 loads, but
where Rasa would warn and silently skip a malformed item this reader stops with a
DataError naming the file and line, because a silently smaller training set is harder
to debug than a clear refusal.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString

from trainkit.data.annotations import AnnotationError, parse_annotated_text
from trainkit.data.training_data import Message, TrainingData
from trainkit.data.yaml_io import (
    check_version,
    expect_list,
    expect_mapping,
    line_of,
    load_yaml,
    read_text,
    to_plain,
    type_name,
    value_line,
)
from trainkit.errors import DataError, Problem, raise_problems

KEY_NLU = "nlu"
KEY_RESPONSES = "responses"
KEY_EXAMPLES = "examples"
KEY_METADATA = "metadata"
KEY_TEXT = "text"

# Item kinds in the order Rasa checks for them: an item is classified by the first one present.
ITEM_KINDS = ("intent", "synonym", "regex", "lookup")
ALLOWED_KEYS = {
    "intent": {"intent", KEY_EXAMPLES, KEY_METADATA},
    "synonym": {"synonym", KEY_EXAMPLES},
    "regex": {"regex", KEY_EXAMPLES},
    "lookup": {"lookup", KEY_EXAMPLES},
}
EXAMPLE_KEYS = {KEY_TEXT, KEY_METADATA}

# Rasa strips only these around an example, not tabs or other whitespace.
STRIP_CHARS = "\n\r "

def read_nlu_file(path: str | Path) -> TrainingData:
    """Load the NLU training data of one YAML file (empty if it has no `nlu:` key)."""
    return read_nlu_document(load_yaml(path), path)


def read_nlu_document(doc: Any, path: str | Path) -> TrainingData:
    """Read NLU data from an already parsed YAML document that came from `path`.

    Separate from `read_nlu_file` so a caller that parsed a file once (to see which kind
    of data it holds) does not parse it again.
    """
    if doc is None:
        return TrainingData()
    expect_mapping(doc, path, "a training data file")
    check_version(doc, path)
    reader = _Reader(Path(path))
    nlu = doc.get(KEY_NLU)
    if nlu is not None:
        expect_list(nlu, path, f"'{KEY_NLU}'", line_of(doc, KEY_NLU))
        problems: list[Problem] = []
        for index, item in enumerate(nlu):
            try:
                reader.read_item(nlu, index, item)
            except DataError as exc:  # keep reading: every broken item is reported
                problems.append(exc.problem)
        raise_problems(problems)
    responses = doc.get(KEY_RESPONSES)
    if responses is not None:
        expect_mapping(responses, path, f"'{KEY_RESPONSES}'", line_of(doc, KEY_RESPONSES))
        reader.responses = to_plain(responses)
    return TrainingData(
        reader.examples, reader.synonyms, reader.regexes, reader.lookups, reader.responses
    )


class _Reader:
    """Accumulates one file's items; holds the path so every error can name it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.examples: list[Message] = []
        self.synonyms: dict[str, str] = {}
        self.regexes: list[dict[str, str]] = []
        self.lookups: list[dict[str, Any]] = []
        self.responses: dict[str, list[dict[str, Any]]] = {}

    def error(self, message: str, line: int | None) -> DataError:
        return DataError(message, self.path, line)

    def read_item(self, nlu: Any, index: int, item: Any) -> None:
        item_line = line_of(nlu, index=index)
        if not isinstance(item, dict):
            raise self.error(
                f"each item under '{KEY_NLU}' must be a mapping with one of the keys "
                f"{', '.join(ITEM_KINDS)}; got {type_name(item)}",
                item_line,
            )
        kind = next((k for k in ITEM_KINDS if k in item), None)
        if kind is None:
            keys = ", ".join(repr(str(k)) for k in item) or "none"
            raise self.error(
                f"item under '{KEY_NLU}' has none of the keys {', '.join(ITEM_KINDS)} "
                f"(found {keys})",
                item_line,
            )
        for key in item:
            if key not in ALLOWED_KEYS[kind]:
                raise self.error(
                    f"unknown key '{key}' in {kind} item; allowed: "
                    f"{', '.join(sorted(ALLOWED_KEYS[kind]))}",
                    line_of(item, key) or item_line,
                )
        name = self.item_name(item, kind, item_line)
        if kind == "intent":
            self.read_intent(item, name, item_line)
            return
        if KEY_EXAMPLES not in item:
            raise self.error(f"{kind} '{name}' has no '{KEY_EXAMPLES}'", item_line)
        examples = item[KEY_EXAMPLES]
        if kind == "lookup" and _is_lookup_file_reference(examples):
            self.read_lookup_file(name, examples.strip(), value_line(item, KEY_EXAMPLES))
            return
        if not isinstance(examples, str):
            raise self.error(
                f"'{KEY_EXAMPLES}' of {kind} '{name}' must be a block of '- ' lines, "
                f"got {type_name(examples)}",
                line_of(item, KEY_EXAMPLES),
            )
        for text, line in self.block_lines(item, name):
            if kind == "synonym":
                self.synonyms[text] = name
            elif kind == "regex":
                try:
                    re.compile(text)
                except re.error as exc:
                    raise self.error(
                        f"invalid regular expression {text!r} in regex '{name}': {exc}", line
                    ) from None
                self.regexes.append({"name": name, "pattern": text})
            else:
                self.lookups.append({"name": name, "elements": [text]})

    def item_name(self, item: dict, kind: str, item_line: int | None) -> str:
        name = item[kind]
        line = line_of(item, kind) or item_line
        if name is None or (isinstance(name, str) and not name.strip()):
            raise self.error(f"empty {kind} name", line)
        if not isinstance(name, str):
            raise self.error(f"{kind} name must be a string, got {type_name(name)}", line)
        return str(name).strip()

    def read_intent(self, item: dict, intent: str, item_line: int | None) -> None:
        if KEY_EXAMPLES not in item:
            raise self.error(f"intent '{intent}' has no '{KEY_EXAMPLES}'", item_line)
        examples = item[KEY_EXAMPLES]
        intent_metadata = to_plain(item.get(KEY_METADATA))
        if isinstance(examples, str):
            for raw, line in self.block_lines(item, intent):
                self.add_example(raw, intent, intent_metadata, None, line)
        elif isinstance(examples, list):
            for index, entry in enumerate(examples):
                line = line_of(examples, index=index) or value_line(item, KEY_EXAMPLES)
                raw, example_metadata = self.list_entry(entry, intent, line)
                self.add_example(raw, intent, intent_metadata, example_metadata, line)
        else:
            raise self.error(
                f"'{KEY_EXAMPLES}' of intent '{intent}' must be a block of '- ' lines or a "
                f"list of {{text: ...}} mappings, got {type_name(examples)}",
                line_of(item, KEY_EXAMPLES),
            )

    def list_entry(self, entry: Any, intent: str, line: int | None) -> tuple[str, Any]:
        if not isinstance(entry, dict):
            raise self.error(
                f"each example of intent '{intent}' must be a mapping with a '{KEY_TEXT}' "
                f"key, got {type_name(entry)}",
                line,
            )
        for key in entry:
            if key not in EXAMPLE_KEYS:
                raise self.error(
                    f"unknown key '{key}' in an example of intent '{intent}'; allowed: "
                    f"{', '.join(sorted(EXAMPLE_KEYS))}",
                    line_of(entry, key) or line,
                )
        if KEY_TEXT not in entry:
            raise self.error(f"example of intent '{intent}' has no '{KEY_TEXT}'", line)
        text = entry[KEY_TEXT]
        if not isinstance(text, str):
            raise self.error(
                f"'{KEY_TEXT}' of an example of intent '{intent}' must be a string, "
                f"got {type_name(text)}",
                line_of(entry, KEY_TEXT) or line,
            )
        return str(text).strip(STRIP_CHARS), to_plain(entry.get(KEY_METADATA))

    def add_example(
        self, raw: str, intent: str, intent_metadata: Any, example_metadata: Any, line: int | None
    ) -> None:
        try:
            parsed = parse_annotated_text(raw)
        except AnnotationError as exc:
            raise self.error(str(exc), line) from None
        for entity in parsed.entities:
            span = parsed.text[entity.start : entity.end]
            if span != entity.value:
                self.synonyms[span] = entity.value
        self.examples.append(
            Message.build(
                parsed.text,
                intent,
                parsed.entities,
                intent_metadata,
                example_metadata,
                path=str(self.path),
                line=line,
            )
        )

    def block_lines(self, item: dict, name: str) -> list[tuple[str, int | None]]:
        """The `- ` entries of a block string with the file line of each.

        Rasa skips (with a warning) lines that do not start with `-`; such a line is
        almost always a wrapped or mis-indented example, so it is refused here instead.
        """
        block = item[KEY_EXAMPLES]
        first = value_line(item, KEY_EXAMPLES)
        # A `|` or `>` block starts on the line after its indicator; a flow scalar starts
        # where the value does (and a multi-line plain scalar cannot be mapped exactly).
        if first is not None and isinstance(block, (LiteralScalarString, FoldedScalarString)):
            first += 1
        exact = isinstance(block, LiteralScalarString) or "\n" not in block.rstrip("\n")
        out: list[tuple[str, int | None]] = []
        for offset, raw_line in enumerate(block.splitlines()):
            line = first + offset if first is not None and exact else first
            if not raw_line.strip():
                continue
            if not raw_line.startswith("-"):
                raise self.error(
                    f"example line {raw_line.strip()!r} of '{name}' does not start with '- '",
                    line,
                )
            out.append((raw_line[1:].strip(STRIP_CHARS), line))
        return out

    def read_lookup_file(self, name: str, reference: str, line: int | None) -> None:
        """Read lookup elements from a text file named relative to the YAML file."""
        target = self.path.parent / reference
        try:
            content = read_text(target)
        except DataError as exc:
            raise self.error(
                f"lookup '{name}' refers to {reference!r}: {exc.problem.message}", line
            ) from None
        elements = [e.strip() for e in content.splitlines() if e.strip()]
        self.lookups.append({"name": name, "elements": elements})


def _is_lookup_file_reference(examples: Any) -> bool:
    if not isinstance(examples, str):
        return False
    text = examples.strip()
    return "\n" not in text and not text.startswith("-") and text.endswith(".txt")
