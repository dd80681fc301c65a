"""The order in which an epoch visits the training examples.

Rasa's DIET, ResponseSelector and TED default to `batch_strategy: balanced`: an epoch is
laid out in rounds, and each round takes from every label a slice proportional to its
share of the data (at least one example). A label that has been seen completely starts
over, but only every other round, and the epoch ends as soon as every label has been
seen once, in the middle of a round. So every minibatch holds examples of most labels,
and rare labels come back more often than a plain shuffle would bring them, without
swamping the batches. With `sequence` (or without labels) an epoch is a plain
permutation.
"""

from __future__ import annotations

import numpy as np

BALANCED = "balanced"
SEQUENCE = "sequence"
STRATEGIES = (BALANCED, SEQUENCE)


def epoch_order(n: int, labels: np.ndarray | None, batch_size: int, rng: np.random.Generator,
                strategy: str) -> np.ndarray:
    """Row indices for one epoch of `n` examples, to be cut into consecutive minibatches
    of `batch_size`; `labels` (one per example) are what `balanced` balances."""
    if strategy != BALANCED or labels is None or n == 0:
        return rng.permutation(n)
    return balanced_order(labels, batch_size, rng)


def balanced_order(labels: np.ndarray, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """Rounds of per-label slices (see the module docstring); rows may repeat."""
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    members = [rng.permutation(np.flatnonzero(inverse == k)) for k in range(classes.size)]
    take = (counts * batch_size // labels.size + 1).astype(np.int64)
    position = np.zeros(classes.size, np.int64)
    cycles = np.zeros(classes.size, np.int64)
    rested = np.zeros(classes.size, bool)
    pieces: list[np.ndarray] = []
    while cycles.min() == 0:
        for k in rng.permutation(classes.size):
            if cycles[k] > 0 and not rested[k]:
                rested[k] = True
                continue
            rested[k] = False
            lo = position[k]
            pieces.append(members[k][lo : lo + take[k]])
            position[k] = lo + take[k]
            if position[k] >= counts[k]:
                cycles[k] += 1
                position[k] = 0
                if cycles.min() > 0:
                    break  # the epoch ends mid-round, as Rasa's does
    return np.concatenate(pieces) if pieces else np.zeros(0, np.int64)
