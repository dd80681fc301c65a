"""Items handed between processes as a JSON structure and a list of arrays, never pickles.

A forked child hands its caller training batches: dataclasses of numpy arrays, tuples,
lists, dicts and scalars. `encode` turns such an item into a JSON-ready structure whose
arrays are replaced by their index in a separate list (so they can travel through shared
memory without a copy), `decode` rebuilds it. Only the dataclasses named in `Types` are
rebuilt, by their registered name and their attributes; an error is handed over as its
type's name and message and comes back as that builtin exception, a registered one, or
`HandoverError` naming it. Nothing in a message decides what code runs.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Iterable
from typing import Any

import numpy as np

from trainkit.errors import TrainkitError


class HandoverError(TrainkitError):
    """An item that cannot be handed over, or an error of a type the caller does not know."""


class Types:
    """The dataclasses (and exception classes) that may be rebuilt, by qualified name."""

    def __init__(self, classes: Iterable[type] = ()) -> None:
        self.by_name = {_name(cls): cls for cls in classes}

    def __contains__(self, cls: type) -> bool:
        return self.by_name.get(_name(cls)) is cls


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def encode(value: Any, arrays: list[np.ndarray], types: Types) -> Any:
    """`value` as a JSON-ready structure; its arrays are appended to `arrays`."""
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise HandoverError("arrays of Python objects cannot be handed over")
        arrays.append(np.ascontiguousarray(value))
        return {"a": len(arrays) - 1}
    if isinstance(value, np.generic):
        arrays.append(np.asarray(value))
        return {"s": len(arrays) - 1}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, type) and issubclass(value, np.generic):
        return {"y": np.dtype(value).str}
    if isinstance(value, tuple):
        return {"t": [encode(v, arrays, types) for v in value]}
    if isinstance(value, list):
        return [encode(v, arrays, types) for v in value]
    if isinstance(value, dict):
        return {"m": [[encode(k, arrays, types), encode(v, arrays, types)] for k, v in value.items()]}
    if isinstance(value, BaseException):
        return {"e": _name(type(value)), "x": str(value)}
    if dataclasses.is_dataclass(value) and type(value) in types:
        return {"o": _name(type(value)), "v": {k: encode(v, arrays, types) for k, v in vars(value).items()}}
    raise HandoverError(f"a {type(value).__name__} cannot be handed over")


def decode(structure: Any, arrays: list[np.ndarray], types: Types) -> Any:
    """The value `encode` made `structure` from, on these arrays."""
    if isinstance(structure, list):
        return [decode(v, arrays, types) for v in structure]
    if not isinstance(structure, dict):
        return structure
    if "a" in structure:
        return arrays[structure["a"]]
    if "s" in structure:
        return arrays[structure["s"]][()]
    if "y" in structure:
        return np.dtype(structure["y"]).type
    if "t" in structure:
        return tuple(decode(v, arrays, types) for v in structure["t"])
    if "m" in structure:
        return {decode(k, arrays, types): decode(v, arrays, types) for k, v in structure["m"]}
    if "e" in structure:
        return _error(structure["e"], structure["x"], types)
    cls = types.by_name.get(structure["o"])
    if cls is None:
        raise HandoverError(f"{structure['o']} is not a type this caller rebuilds")
    obj = cls.__new__(cls)
    obj.__dict__.update({k: decode(v, arrays, types) for k, v in structure["v"].items()})
    return obj


def _error(name: str, message: str, types: Types) -> BaseException:
    module, _, short = name.rpartition(".")
    cls = types.by_name.get(name)
    if cls is None and module == "builtins":
        cls = getattr(builtins, short, None)
    if isinstance(cls, type) and issubclass(cls, BaseException):
        try:
            return cls(message)
        except Exception:  # an exception class whose constructor wants more
            pass
    return HandoverError(f"{short}: {message}")
