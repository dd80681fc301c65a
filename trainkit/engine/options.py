"""What values a component option accepts, declared next to its default.

A component's `defaults` table is the one place its options are declared: an entry is
either a plain default (a boolean or string default accepts any value of that type) or
an `Option` holding the default together with a check. The checks are small value
objects rather than functions so that tests can read the bounds back and probe them
(the component contract suite tries every declared bound), and so that an error can say
what *would* have been accepted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Check:
    """Accepts or rejects one option value; `problem` says why it is rejected."""

    def problem(self, value: Any) -> str | None:
        """None when `value` is acceptable, else what is wrong with it."""
        raise NotImplementedError

    def matches_type(self, value: Any) -> bool:
        """Whether `value` has a type this check handles (its bounds may still fail)."""
        return True

    def examples(self) -> list[Any]:
        """Values just inside the bounds (for tests probing the declaration)."""
        return []

    def counterexamples(self) -> list[Any]:
        """Values of the right type just outside the bounds, plus one of a wrong type."""
        return []


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Int(Check):
    """A whole number in [low, high] (`null` also allows null)."""

    low: int
    high: int
    null: bool = False

    def problem(self, value: Any) -> str | None:
        if value is None and self.null:
            return None
        if not _is_int(value):
            return f"must be a whole number between {self.low} and {self.high}, got {_describe(value)}"
        if not self.low <= value <= self.high:
            return f"must be between {self.low} and {self.high}, got {value}"
        return None

    def matches_type(self, value: Any) -> bool:
        return _is_int(value) or (value is None and self.null)

    def examples(self) -> list[Any]:
        return [self.low, self.high] + ([None] if self.null else [])

    def counterexamples(self) -> list[Any]:
        return [self.low - 1, self.high + 1, "3", 2.5]


@dataclass(frozen=True)
class Float(Check):
    """A finite number between low and high; `open_low`/`open_high` exclude the ends."""

    low: float
    high: float
    open_low: bool = False
    open_high: bool = False
    null: bool = False

    def problem(self, value: Any) -> str | None:
        if value is None and self.null:
            return None
        left = "(" if self.open_low else "["
        right = ")" if self.open_high else "]"
        interval = f"{left}{self.low}, {self.high}{right}"
        if not _is_number(value) or (isinstance(value, float) and not math.isfinite(value)):
            return f"must be a number in {interval}, got {_describe(value)}"
        too_low = value <= self.low if self.open_low else value < self.low
        too_high = value >= self.high if self.open_high else value > self.high
        if too_low or too_high:
            return f"must be in {interval}, got {value}"
        return None

    def matches_type(self, value: Any) -> bool:
        return _is_number(value) or (value is None and self.null)

    def examples(self) -> list[Any]:
        inside = [
            math.nextafter(self.low, math.inf) if self.open_low else self.low,
            math.nextafter(self.high, -math.inf) if self.open_high else self.high,
        ]
        return inside + ([None] if self.null else [])

    def counterexamples(self) -> list[Any]:
        outside = [
            self.low if self.open_low else math.nextafter(self.low, -math.inf),
            self.high if self.open_high else math.nextafter(self.high, math.inf),
            [1], math.nan,
        ]
        return [v for v in outside if not (isinstance(v, float) and math.isinf(v))]


@dataclass(frozen=True)
class Choice(Check):
    """One of a fixed set of values (strings, or null when listed)."""

    values: tuple[Any, ...]

    def problem(self, value: Any) -> str | None:
        if any(value == v and type(value) is type(v) for v in self.values):
            return None
        shown = ", ".join("null" if v is None else str(v) for v in self.values)
        return f"must be one of {shown}, got {_describe(value)}"

    def examples(self) -> list[Any]:
        return list(self.values)

    def counterexamples(self) -> list[Any]:
        return ["no-such-choice", 7]


@dataclass(frozen=True)
class OfType(Check):
    """Any value of the given types (booleans and strings without further bounds)."""

    types: tuple[type, ...]
    null: bool = False

    def problem(self, value: Any) -> str | None:
        if value is None and self.null:
            return None
        if isinstance(value, self.types) and not (
            isinstance(value, bool) and bool not in self.types
        ):
            return None
        names = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in self.types)
        return f"must be {names}{' or null' if self.null else ''}, got {_describe(value)}"

    def matches_type(self, value: Any) -> bool:
        return self.problem(value) is None

    def counterexamples(self) -> list[Any]:
        return [[1, 2]] if list not in self.types else [12345]


_TYPE_NAMES = {bool: "true or false", str: "a string", list: "a list", dict: "a mapping"}


@dataclass(frozen=True)
class ListOf(Check):
    """A list whose items all pass `item`, with at most `max_length` items."""

    item: Check
    max_length: int = 10_000
    min_length: int = 0
    null: bool = False

    def problem(self, value: Any) -> str | None:
        if value is None and self.null:
            return None
        if not isinstance(value, list):
            return f"must be a list, got {_describe(value)}"
        if not self.min_length <= len(value) <= self.max_length:
            return f"must have between {self.min_length} and {self.max_length} items, got {len(value)}"
        for index, entry in enumerate(value):
            problem = self.item.problem(entry)
            if problem is not None:
                return f"item {index + 1} {problem}"
        return None

    def matches_type(self, value: Any) -> bool:
        return isinstance(value, list) or (value is None and self.null)

    def counterexamples(self) -> list[Any]:
        bad = self.item.counterexamples()
        return ["not a list"] + ([[bad[0]]] if bad else [])


@dataclass(frozen=True)
class MapOf(Check):
    """A mapping whose values pass `value`; `keys` limits the keys (None: any string)."""

    keys: tuple[str, ...] | None
    value: Check

    def problem(self, value: Any) -> str | None:
        expected = "a mapping" + (f" with keys {', '.join(self.keys)}" if self.keys else "")
        if not isinstance(value, dict):
            return f"must be {expected}, got {_describe(value)}"
        for key, entry in value.items():
            if not isinstance(key, str) or (self.keys is not None and key not in self.keys):
                return f"has an unknown key {_describe(key)} (must be {expected})"
            problem = self.value.problem(entry)
            if problem is not None:
                return f"'{key}' {problem}"
        return None

    def matches_type(self, value: Any) -> bool:
        return isinstance(value, dict)

    def counterexamples(self) -> list[Any]:
        bad = self.value.counterexamples()
        key = self.keys[0] if self.keys else "some_key"
        return [5] + ([{key: bad[0]}] if bad else [])


@dataclass(frozen=True)
class AnyOf(Check):
    """Passes when one of `checks` passes (e.g. a batch size or a [low, high] pair)."""

    checks: tuple[Check, ...]

    def problem(self, value: Any) -> str | None:
        problems = [check.problem(value) for check in self.checks]
        if any(p is None for p in problems):
            return None
        # Report against the alternative meant (the one of the value's type), if any.
        for check, problem in zip(self.checks, problems, strict=True):
            if check.matches_type(value):
                return problem
        alternatives = " or ".join(p.removeprefix("must be ") for p in problems if p)
        return f"must be {alternatives}"

    def examples(self) -> list[Any]:
        return [v for check in self.checks for v in check.examples()]

    def counterexamples(self) -> list[Any]:
        return [v for v in self.checks[0].counterexamples() if self.problem(v) is not None]


@dataclass(frozen=True)
class Anything(Check):
    """No constraint: used only for free-form values a component passes through."""

    def problem(self, value: Any) -> str | None:
        return None


@dataclass(frozen=True)
class Option:
    """A default value plus the check every configured value must pass."""

    default: Any
    check: Check = field(default_factory=Anything)


def infer_check(default: Any) -> Check | None:
    """The check a plain default implies, for the types where that is unambiguous."""
    if isinstance(default, bool):
        return OfType((bool,))
    if isinstance(default, str):
        return OfType((str,))
    return None


def pair_or_int(low: int, high: int) -> Check:
    """An int, or a [start, end] pair of ints (Rasa's linearly growing batch size)."""
    return AnyOf((Int(low, high), ListOf(Int(low, high), max_length=2, min_length=2)))


def strings(max_length: int = 10_000, null: bool = False) -> Check:
    """A list of strings."""
    return ListOf(OfType((str,)), max_length=max_length, null=null)


def layers(keys: Sequence[str], max_units: int, max_layers: int = 16) -> Check:
    """Hidden layer sizes per input (`{text: [256, 128], label: []}`)."""
    return MapOf(tuple(keys), ListOf(Int(1, max_units), max_length=max_layers))


# Upper bounds shared by the built-in components: far above any sensible setting, low
# enough that a typo (an extra few zeros) is an error instead of a week of training.
MAX_EPOCHS = 100_000
MAX_UNITS = 16_384  # width of one dense layer or embedding
MAX_BATCH_SIZE = 100_000
MAX_SEED = 2**32 - 1
MAX_HISTORY = 1_000  # dialogue turns a policy looks back
MAX_RANKING_LENGTH = 100_000
MAX_ITERATIONS = 1_000_000

SEED = Int(0, MAX_SEED, null=True)
PROBABILITY = Float(0.0, 1.0)
DROP_RATE = Float(0.0, 1.0, open_high=True)
LEARNING_RATE = Float(0.0, 10.0, open_low=True)
SIMILARITY = Float(-1.0, 1.0)
NON_NEGATIVE = Float(0.0, 1e6)
RANKING_LENGTH = Int(0, MAX_RANKING_LENGTH)
EPOCHS = Int(0, MAX_EPOCHS)
HISTORY = Int(1, MAX_HISTORY, null=True)
PRIORITY = Int(-1000, 1000)
