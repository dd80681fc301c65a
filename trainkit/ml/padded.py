"""Sparse-times-dense products as padded gathers, for very sparse batches.

A minibatch of token feature rows holds ~30 entries per row over thousands of active
columns, so a dense BLAS product of its (rows x columns) block multiplies mostly zeros,
and the classic gather-then-segment-sum materialises one dense row per stored entry
before summing. Here the rows are sorted by their number of entries and cut into blocks
that are each padded to their longest row: a block is an index array and a value array
of shape (rows x width), and its product is one batched matmul of the values with the
gathered dense rows. Sorting keeps the padding small, and the block size keeps the
gathered temporary in cache.

Padding cells point at dense row 0 with value 0, so they add nothing (for finite
operands, as in a dense product).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainkit.ml.lanes import Lane, share
from trainkit.ml.sparse import CSR

# Cells (rows x width) of one block: with 128 outputs its gathered temporary is 2 MB in
# single precision, which keeps it in cache.
BLOCK_CELLS = 4096
# what one row of a block costs in a product, in cells (`PaddedRows.matmul`'s split)
ROW_CELLS = 6


@dataclass
class PaddedRows:
    """The rows of a sparse matrix as padded blocks, longest rows first.

    Block i covers rows `order[bounds[i]:bounds[i + 1]]`; `index[i]` and `values[i]` are
    its (rows x width) column indices and values.
    """

    shape: tuple[int, int]
    order: np.ndarray
    bounds: np.ndarray
    index: list[np.ndarray]
    values: list[np.ndarray]

    @classmethod
    def from_csr(cls, matrix: CSR, dtype: type = np.float64, block_cells: int = BLOCK_CELLS) -> PaddedRows:
        """Sort the rows by entry count and cut them into padded blocks of about
        `block_cells` cells (at least one row each); empty rows get no block."""
        counts = np.diff(matrix.indptr)
        order = np.argsort(-counts, kind="stable")
        widths = counts[order]
        n_full = int(np.count_nonzero(widths))
        bounds = [0]
        while bounds[-1] < n_full:
            lo = bounds[-1]
            rows = max(1, block_cells // max(int(widths[lo]), 1))
            bounds.append(min(n_full, lo + rows))
        bounds_arr = np.asarray(bounds, dtype=np.int64)
        # one flat buffer for all blocks; every stored entry gets its cell in it
        block_of = np.repeat(np.arange(bounds_arr.size - 1), np.diff(bounds_arr))
        block_width = widths[bounds_arr[:-1]]
        block_base = np.concatenate([[0], np.cumsum(np.diff(bounds_arr) * block_width)]).astype(np.int64)
        position = np.empty(matrix.shape[0], np.int64)
        position[order] = np.arange(order.size)
        entry_row = np.repeat(np.arange(matrix.shape[0]), counts)
        entry_pos = position[entry_row]
        within = np.arange(matrix.nnz) - np.repeat(matrix.indptr[:-1], counts)
        entry_block = block_of[entry_pos] if entry_pos.size else entry_pos
        cell = (block_base[entry_block] + (entry_pos - bounds_arr[entry_block]) * block_width[entry_block] + within)
        flat_index = np.zeros(int(block_base[-1]), np.int64)
        flat_values = np.zeros(int(block_base[-1]), dtype=dtype)
        flat_index[cell] = matrix.indices
        flat_values[cell] = matrix.data
        index, values = [], []
        for i in range(bounds_arr.size - 1):
            lo, hi = int(block_base[i]), int(block_base[i + 1])
            shape = (int(bounds_arr[i + 1] - bounds_arr[i]), int(block_width[i]))
            index.append(flat_index[lo:hi].reshape(shape))
            values.append(flat_values[lo:hi].reshape(shape))
        return cls(matrix.shape, order, bounds_arr, index, values)

    @classmethod
    def transposed(cls, matrix: CSR, dtype: type = np.float64, block_cells: int = BLOCK_CELLS) -> PaddedRows:
        """Padded blocks of `matrix.T` (for the gradient product `matrix.T @ grad`).

        The transpose needs the entries ordered by column; a stable argsort of 16-bit
        keys is a radix sort, five times faster than sorting 64-bit ones, so columns are
        sorted as 16-bit integers when there are few enough of them (a minibatch's
        active columns usually are).
        """
        keys = matrix.indices
        if matrix.shape[1] <= np.iinfo(np.uint16).max + 1:
            keys = keys.astype(np.uint16)
        order = np.argsort(keys, kind="stable")
        rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))[order]
        indptr = np.zeros(matrix.shape[1] + 1, np.int64)
        np.cumsum(np.bincount(matrix.indices, minlength=matrix.shape[1]), out=indptr[1:])
        transpose = CSR(matrix.data[order], rows, indptr, (matrix.shape[1], matrix.shape[0]))
        return cls.from_csr(transpose, dtype, block_cells)

    @property
    def cells(self) -> int:
        """Cells of all blocks, padding included (the work of a product, per output)."""
        return sum(v.size for v in self.values)

    def matmul(self, dense: np.ndarray, lane: Lane | None = None) -> np.ndarray:
        """`matrix @ dense` for a dense (columns x k) operand, in the operand's precision.

        With a lane, the blocks of the second half of the work are offered to it: each
        block writes its own rows, so who computes which never changes the numbers.
        """
        if dense.shape[0] != self.shape[1]:
            raise ValueError(f"shape mismatch: {self.shape} @ {dense.shape}")
        out = np.zeros((self.shape[0], dense.shape[1]), dtype=dense.dtype)
        n_blocks = len(self.index)
        if lane is None or n_blocks < 2:
            self._blocks_into(dense, out, 0, n_blocks)
            return out
        # a block costs its cells and, per row, the gather and the write of a whole
        # output row (measured: a row weighs about six cells at 128 outputs), so the
        # blocks of short rows at the end count for more than their cells
        cost = np.cumsum([v.size + ROW_CELLS * v.shape[0] for v in self.values])
        half = int(np.clip(np.searchsorted(cost, cost[-1] / 2), 1, n_blocks - 1))
        share(lambda: self._blocks_into(dense, out, 0, half),
              lambda: self._blocks_into(dense, out, half, n_blocks), lane)
        return out

    def _blocks_into(self, dense: np.ndarray, out: np.ndarray, first: int, stop: int) -> None:
        """The rows of blocks first..stop-1 of the product, written into `out`."""
        for i in range(first, stop):
            index, values = self.index[i], self.values[i]
            rows = self.order[self.bounds[i] : self.bounds[i + 1]]
            weights = values.astype(dense.dtype, copy=False)
            # np.take copies whole rows, a third faster than fancy indexing
            gathered = np.take(dense, index[:, 0] if index.shape[1] == 1 else index, axis=0)
            if index.shape[1] == 1:
                # rows of one entry (the commonest block of a gradient's transpose): a
                # product of one term each, the same numbers as the batched matmul
                # gives, which is five times slower at this shape
                gathered *= weights
                out[rows] = gathered
            else:
                out[rows] = np.matmul(weights[:, None, :], gathered)[:, 0]
