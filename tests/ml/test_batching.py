"""Epoch orders: Rasa's balanced batching and the plain shuffle."""

from __future__ import annotations

import numpy as np
import pytest

from trainkit.ml.batching import BALANCED, SEQUENCE, balanced_order, epoch_order


def _imbalanced() -> np.ndarray:
    # one label with 90 examples, two with 5
    return np.asarray([0] * 90 + [1] * 5 + [2] * 5)


def test_sequence_is_a_permutation() -> None:
    labels = _imbalanced()
    order = epoch_order(labels.size, labels, 16, np.random.default_rng(0), SEQUENCE)
    assert sorted(order.tolist()) == list(range(labels.size))


def test_balanced_sees_every_example_once_in_proportion() -> None:
    labels = _imbalanced()
    order = balanced_order(labels, 16, np.random.default_rng(0))
    assert set(order.tolist()) == set(range(labels.size))
    assert np.bincount(labels[order], minlength=3)[0] == 90


def test_balanced_repeats_a_label_far_rarer_than_a_batch_share() -> None:
    labels = np.asarray([0] * 200 + [1] * 2)
    order = balanced_order(labels, 32, np.random.default_rng(0))
    counts = np.bincount(labels[order], minlength=2)
    assert counts[0] == 200
    assert counts[1] > 2


def test_balanced_on_balanced_data_is_about_one_pass() -> None:
    labels = np.repeat(np.arange(10), 20)
    order = balanced_order(labels, 32, np.random.default_rng(0))
    assert set(order.tolist()) == set(range(labels.size))
    assert order.size <= labels.size * 1.2


def test_balanced_is_deterministic_given_the_generator() -> None:
    labels = _imbalanced()
    first = epoch_order(labels.size, labels, 8, np.random.default_rng(5), BALANCED)
    again = epoch_order(labels.size, labels, 8, np.random.default_rng(5), BALANCED)
    assert np.array_equal(first, again)


@pytest.mark.parametrize("strategy", [BALANCED, SEQUENCE])
def test_no_labels_gives_an_empty_order(strategy: str) -> None:
    assert epoch_order(0, np.zeros(0, np.int64), 8, np.random.default_rng(0), strategy).size == 0


def test_without_labels_balanced_falls_back_to_a_shuffle() -> None:
    order = epoch_order(7, None, 4, np.random.default_rng(0), BALANCED)
    assert sorted(order.tolist()) == list(range(7))


@pytest.mark.parametrize("seed", range(6))
def test_balanced_ends_once_the_last_label_is_seen_in_full(seed: int) -> None:
    """As in Rasa, the epoch stops in the middle of a round, right after the slice that
    completes the last label's first pass: nothing of other labels follows it."""
    rng = np.random.default_rng(100 + seed)
    labels = np.repeat(np.arange(8), rng.integers(1, 40, 8))
    order = balanced_order(labels, 16, np.random.default_rng(seed))
    seen = np.zeros(labels.size, bool)
    complete_at = None
    for position, row in enumerate(order):
        seen[row] = True
        if seen.all():
            complete_at = position
            break
    assert complete_at == order.size - 1
