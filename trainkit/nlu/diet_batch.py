"""DIET's minibatches: the encoded training data they are drawn from, one batch with
its token layout, and the operations on a batch's token rows that the network's layers
share (the context window and its gradient, segment and index sums).

Token rows are message after message (no padded grid): a batch's tokens are the rows of
its messages in order, `token_b` and `token_t` give each row's message and position.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from trainkit.ml import crf
from trainkit.ml import layers as nn
from trainkit.ml.sparse import CSR


@dataclass
class EncodedData:
    """Training (or prediction) inputs as arrays: rows of `sentence` are messages.

    Tokens of message i are rows `token_offsets[i]:token_offsets[i+1]` of `sequence`;
    `tags[head]` holds one tag id per token row; `labels` one label id per message.
    """

    sentence: CSR
    sequence: CSR
    token_offsets: np.ndarray
    labels: np.ndarray | None = None
    tags: dict[str, np.ndarray] = field(default_factory=dict)
    # `duplicate_row_ids(sequence)`, when known, lets batches merge identical tokens
    token_uid: np.ndarray | None = None
    # columns input dropout leaves alone (dense features, unless use_dense_input_dropout)
    protected_sentence: np.ndarray | None = None
    protected_sequence: np.ndarray | None = None

    def __len__(self) -> int:
        return self.sentence.shape[0]


@dataclass
class Batch:
    """One minibatch: its sparse inputs, its token layout and its labels and tags."""

    sentence: nn.SparseBatch
    sequence: nn.SparseBatch | None
    lengths: np.ndarray
    token_b: np.ndarray
    token_t: np.ndarray
    steps: int
    labels: np.ndarray | None
    tags: dict[str, np.ndarray]
    # token row -> row of `sequence` when identical token rows were merged
    token_inverse: np.ndarray | None = None
    # per context-window offset, the token rows whose neighbour lies outside their message
    outside: dict[int, np.ndarray] = field(default_factory=dict)
    # drawn ahead of a training step by `Network.prepare_token_part`: the token part's
    # two dropout masks (token layer, context layer)
    token_masks: tuple[np.ndarray | None, np.ndarray | None] | None = None
    # made on first use (`merge_plan`, `crf_packing`), or ahead by `prepare_token_part`
    merge: Merge | None = None
    packing: crf.Packing | None = None

    def merge_plan(self) -> Merge:
        """How the gradients of identical token rows add up into `sequence`'s rows."""
        if self.merge is None:
            assert self.token_inverse is not None and self.sequence is not None
            self.merge = Merge.of(self.token_inverse, self.sequence.local.shape[0])
        return self.merge

    def crf_packing(self) -> crf.Packing:
        """The CRF's layout of the batch's messages (`crf.Packing`)."""
        if self.packing is None:
            self.packing = crf.Packing.from_lengths(self.lengths)
        return self.packing


@dataclass
class Merge:
    """How `sum_by_index` adds the rows of each index: the rows sorted by index, the
    indices present and where each one's run starts in that order."""

    order: np.ndarray
    present: np.ndarray
    starts: np.ndarray
    n_out: int

    @classmethod
    def of(cls, index: np.ndarray, n_out: int) -> Merge:
        counts = np.bincount(index, minlength=n_out)
        present = np.flatnonzero(counts)
        return cls(np.argsort(index, kind="stable"), present, (np.cumsum(counts) - counts)[present], n_out)


def duplicate_row_ids(matrix: CSR) -> np.ndarray:
    """For each row, the index of the first row with exactly the same entries.

    Tokens repeat a lot ("the", "to", "play"), and the first token layer only depends on
    a token's own feature row, so a minibatch computes it once per distinct row.
    """
    first: dict[bytes, int] = {}
    ids = np.empty(matrix.shape[0], np.int64)
    indptr, indices, data = matrix.indptr, matrix.indices, matrix.data
    for row in range(matrix.shape[0]):
        lo, hi = indptr[row], indptr[row + 1]
        key = indices[lo:hi].tobytes() + b"|" + data[lo:hi].tobytes()
        ids[row] = first.setdefault(key, row)
    return ids


def gather(data: EncodedData, rows: np.ndarray, with_tokens: bool) -> tuple[CSR, CSR | None, np.ndarray, np.ndarray]:
    """Rows of the sentence matrix and the token rows of those messages."""
    sentence = data.sentence.take_rows(rows)
    lengths = (data.token_offsets[rows + 1] - data.token_offsets[rows]).astype(np.int64)
    if not with_tokens:
        return sentence, None, lengths, np.zeros(0, np.int64)
    total = int(lengths.sum())
    starts = np.repeat(data.token_offsets[rows], lengths)
    within = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    token_rows = starts + within
    return sentence, data.sequence.take_rows(token_rows), lengths, token_rows


def sum_by_index(values: np.ndarray, merge: Merge) -> np.ndarray:
    """`out[index[i]] += values[i]` for all i, as one gather and one segment sum."""
    out = np.zeros((merge.n_out, values.shape[1]), dtype=values.dtype)
    if merge.present.size:
        out[merge.present] = np.add.reduceat(values[merge.order], merge.starts, axis=0)
    return out


def segment_sum(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sum consecutive row groups of the given lengths (zero rows for empty groups)."""
    out = np.zeros((lengths.size, values.shape[1]), dtype=values.dtype)
    nonempty = np.flatnonzero(lengths > 0)
    if nonempty.size:
        starts = (np.cumsum(lengths) - lengths)[nonempty]
        out[nonempty] = np.add.reduceat(values, starts, axis=0)
    return out


def outside_rows(batch: Batch, offset: int) -> np.ndarray:
    """Token rows whose neighbour `offset` positions away lies outside their message
    (kept on the batch: the forward and the backward pass both need them)."""
    rows = batch.outside.get(offset)
    if rows is None:
        target = batch.token_t + offset
        rows = batch.outside[offset] = np.flatnonzero((target < 0) | (target >= batch.lengths[batch.token_b]))
    return rows


def context_window(g: np.ndarray, batch: Batch, offsets: list[int]) -> np.ndarray:
    """The context window's input: per token row, side by side, the hidden vectors of
    the tokens at each offset in the same message (zeros past either end). Token rows
    are message after message, so each neighbour block is the rows shifted by the offset
    (one contiguous copy), with the rows whose neighbour lies outside their message
    zeroed; no padding is ever computed."""
    n, width = g.shape
    out = np.empty((n, width * len(offsets)), dtype=g.dtype)
    for j, offset in enumerate(offsets):
        block = out[:, j * width : (j + 1) * width]
        if offset == 0:
            block[:] = g
            continue
        if abs(offset) >= n:
            block[:] = 0.0
            continue
        if offset > 0:
            block[: n - offset] = g[offset:]
            block[n - offset :] = 0.0
        else:
            block[-offset:] = g[: n + offset]
            block[:-offset] = 0.0
        block[outside_rows(batch, offset)] = 0.0
    return out


def context_window_backward(d_window: np.ndarray, batch: Batch, offsets: list[int], width: int) -> np.ndarray:
    """The gradient of `_window`: each block's opposite shift, summed in offset order,
    with the rows whose neighbour was outside their message left out (zeroed in
    `d_window`, which this consumes, so the sums are exactly those of the valid rows)."""
    n = d_window.shape[0]
    d_g = np.zeros((n, width), dtype=d_window.dtype)
    for j, offset in enumerate(offsets):
        part = d_window[:, j * width : (j + 1) * width]
        if offset == 0:
            d_g += part
            continue
        if abs(offset) >= n:
            continue
        part[outside_rows(batch, offset)] = 0.0
        if offset > 0:
            d_g[offset:] += part[: n - offset]
        else:
            d_g[: n + offset] += part[-offset:]
    return d_g
