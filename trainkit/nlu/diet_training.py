"""DIET's training schedule: the options its training loop reads, each epoch's
minibatches (Rasa's linearly growing batch size, `batch_strategy`), the learning rate per
epoch and the average of end-of-epoch weights that prediction uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from trainkit.ml import layers as nn
from trainkit.ml.batching import epoch_order
from trainkit.nlu.diet_batch import EncodedData

# learning-rate schedules (`learning_rate_at`)
CONSTANT, COSINE = "constant", "cosine"
SCHEDULES = (CONSTANT, COSINE)


@dataclass
class TrainingOptions:
    """The optimisation options the network's training loop reads."""

    epochs: int
    batch_size: tuple[int, int]
    learning_rate: float
    drop_rate: float
    sparse_input_dropout: bool
    connection_density: float
    regularization: float
    loss: nn.SimilarityLossConfig
    number_of_negative_examples: int
    seed: int
    # fraction of training after which end-of-epoch weights are averaged (None: off)
    average_from: float | None = None
    # dropout of the dense hidden layers (the sparse inputs use `drop_rate`)
    hidden_drop_rate: float = 0.2
    # how an epoch orders the examples (`trainkit.ml.batching`)
    batch_strategy: str = "sequence"
    # how the learning rate changes over the epochs (one of SCHEDULES, `learning_rate_at`)
    learning_rate_schedule: str = CONSTANT


@dataclass
class Epoch:
    """One epoch's minibatches (row indices, in order) and how many rows they hold."""

    index: int
    chunks: list[np.ndarray]
    rows: int


def plan_epochs(data: EncodedData, options: TrainingOptions, rng: np.random.Generator) -> Iterator[Epoch]:
    """The epochs' minibatches, each epoch's order drawn from `rng` when it starts."""
    for index in range(options.epochs):
        size = batch_size_at(options.batch_size, index, options.epochs)
        order = epoch_order(len(data), data.labels, size, rng, options.batch_strategy)
        yield Epoch(index, [order[begin : begin + size] for begin in range(0, order.size, size)], int(order.size))


def averages_after(options: TrainingOptions, epoch: int) -> bool:
    """Whether the weights at the end of this epoch go into the average."""
    return options.average_from is not None and epoch >= options.average_from * options.epochs


@dataclass
class Average:
    """Running sums of end-of-epoch weights, per parameter (weight averaging)."""

    totals: dict[str, np.ndarray] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, params: dict[str, np.ndarray], names: Iterable[str]) -> None:
        """Add the current values of these parameters."""
        for name in names:
            value = params[name]
            if name in self.totals:
                self.totals[name] += value
            else:
                self.totals[name] = value.astype(np.float64)
            self.counts[name] = self.counts.get(name, 0) + 1

    def merge(self, other: Average) -> None:
        """Take over the sums of other parameters (the other lane's)."""
        self.totals.update(other.totals)
        self.counts.update(other.counts)

    def result(self, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The averaged parameters (the current ones where nothing was added)."""
        return {name: (self.totals[name] / self.counts[name]).astype(value.dtype) if name in self.totals else value
                for name, value in params.items()}


def learning_rate_at(options: TrainingOptions, epoch: int) -> float:
    """The learning rate of an epoch: constant, or (`cosine`) falling along a half cosine
    from the configured rate at the first epoch towards zero after the last."""
    if options.learning_rate_schedule == COSINE:
        progress = epoch / max(options.epochs, 1)
        return options.learning_rate * 0.5 * (1.0 + float(np.cos(np.pi * progress)))
    return options.learning_rate


def batch_size_at(sizes: tuple[int, int], epoch: int, epochs: int) -> int:
    """Rasa's linearly increasing batch size from sizes[0] at the first epoch to sizes[1]."""
    low, high = sizes
    if epochs <= 1:
        return max(int(low), 1)
    return max(int(low + epoch * (high - low) / (epochs - 1)), 1)
