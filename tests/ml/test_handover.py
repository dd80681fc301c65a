"""Items handed between processes rebuild to what was encoded, from JSON and arrays only."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest

from trainkit.errors import TrainkitError
from trainkit.ml.handover import HandoverError, Types, decode, encode


@dataclass
class Inner:
    values: np.ndarray
    dtype: type = np.float32


@dataclass
class Outer:
    inner: Inner
    by_offset: dict[int, np.ndarray] = field(default_factory=dict)
    shape: tuple[int, int] = (0, 0)
    parts: list[np.ndarray] = field(default_factory=list)
    loss: float = 0.0
    cached: Inner | None = None


class Unknown:
    pass


def _round_trip(value, types):
    arrays: list[np.ndarray] = []
    structure = json.loads(json.dumps(encode(value, arrays, types)))  # what the pipe carries
    return decode(structure, [a.copy() for a in arrays], types), arrays


def test_registered_dataclasses_rebuild_with_their_arrays_and_plain_values():
    rng = np.random.default_rng(0)
    outer = Outer(Inner(rng.random((3, 4)).astype(np.float32)), {-1: np.arange(3), 2: np.arange(0)}, (3, 4),
                  [rng.random(5)[::2], np.zeros((0, 7))], np.float64(0.25))
    outer.extra = "set after construction"  # attributes outside the fields travel too
    back, arrays = _round_trip(outer, Types([Inner, Outer]))
    assert type(back) is Outer and type(back.inner) is Inner
    np.testing.assert_array_equal(back.inner.values, outer.inner.values)
    assert back.inner.dtype is np.float32 and back.inner.values.dtype == np.float32
    assert set(back.by_offset) == {-1, 2} and back.by_offset[-1].tolist() == [0, 1, 2]
    assert back.shape == (3, 4) and isinstance(back.shape, tuple)
    np.testing.assert_array_equal(back.parts[0], outer.parts[0])  # a strided view arrives contiguous
    assert back.parts[1].shape == (0, 7)
    assert back.loss == 0.25 and isinstance(back.loss, np.float64)
    assert back.cached is None and back.extra == "set after construction"
    assert len(arrays) == 6  # the arrays are apart from the structure


def test_what_is_not_registered_is_refused_both_ways():
    with pytest.raises(HandoverError, match="Inner cannot be handed over"):
        encode(Inner(np.zeros(2)), [], Types([Outer]))
    with pytest.raises(HandoverError, match="Unknown cannot be handed over"):
        encode(Unknown(), [], Types())
    with pytest.raises(HandoverError, match="Python objects"):
        encode(np.array([object()]), [], Types())
    structure = encode(Inner(np.zeros(2)), [], Types([Inner]))
    with pytest.raises(HandoverError, match="not a type this caller rebuilds"):
        decode(structure, [np.zeros(2)], Types())


class Custom(TrainkitError):
    pass


def test_errors_come_back_as_their_builtin_or_registered_type_or_a_named_handover_error():
    back, _ = _round_trip(FloatingPointError("overflow"), Types())
    assert type(back) is FloatingPointError and str(back) == "overflow"
    back, _ = _round_trip(Custom("bad data"), Types([Custom]))
    assert type(back) is Custom and str(back) == "bad data"
    back, _ = _round_trip(Custom("bad data"), Types())
    assert type(back) is HandoverError and str(back) == "Custom: bad data"
