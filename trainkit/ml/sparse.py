"""Compressed sparse row matrices in plain numpy.

Text features are overwhelmingly zero (a char n-gram vocabulary has tens of thousands of
columns, a message touches a few hundred), and scipy is not a dependency, so the few
operations the models need are implemented here. Every operation works on whole arrays:
products gather the rows of the dense operand by column index and sum segments with
`np.add.reduceat`, processed in chunks so the temporary (nnz x k) block stays bounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

# Cells of a temporary product block: small enough (~1 MB) to stay in cache, which is
# worth ~2x over larger blocks, and large enough to keep per-chunk overhead negligible.
_CHUNK_CELLS = 131_072


@dataclass(eq=False)
class CSR:
    """A sparse matrix in CSR layout with float64 values and sorted, unique columns per row."""

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    shape: tuple[int, int]
    _transposed: CSR | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.data = np.asarray(self.data, dtype=np.float64)
        self.indices = np.asarray(self.indices, dtype=np.int64)
        self.indptr = np.asarray(self.indptr, dtype=np.int64)
        self.shape = (int(self.shape[0]), int(self.shape[1]))
        if self.indptr.shape != (self.shape[0] + 1,):
            raise ValueError(f"indptr has {self.indptr.size} entries for {self.shape[0]} rows")
        if self.data.shape != self.indices.shape or int(self.indptr[-1]) != self.data.size:
            raise ValueError("data/indices/indptr sizes disagree")

    # ----------------------------------------------------------------- construction
    @classmethod
    def empty(cls, n_rows: int, n_cols: int) -> CSR:
        """An all-zero matrix (also the shape of 'this featurizer produced nothing')."""
        return cls(np.zeros(0), np.zeros(0, np.int64), np.zeros(n_rows + 1, np.int64), (n_rows, n_cols))

    @classmethod
    def from_coo(
        cls,
        rows: np.ndarray | Sequence[int],
        cols: np.ndarray | Sequence[int],
        values: np.ndarray | Sequence[float] | None,
        shape: tuple[int, int],
    ) -> CSR:
        """Build from coordinate triplets; duplicate coordinates are summed (counts add up)."""
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        vals = np.ones(rows.size) if values is None else np.asarray(values, dtype=np.float64)
        n_rows, n_cols = int(shape[0]), int(shape[1])
        if rows.size and (rows.min() < 0 or rows.max() >= n_rows or cols.min() < 0 or cols.max() >= n_cols):
            raise ValueError("coordinate outside the matrix shape")
        keys = rows * max(n_cols, 1) + cols
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        vals = vals[order]
        if keys.size:
            starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
            vals = np.add.reduceat(vals, starts)
            keys = keys[starts]
        rows_u = keys // max(n_cols, 1)
        cols_u = keys % max(n_cols, 1)
        indptr = np.zeros(n_rows + 1, np.int64)
        np.cumsum(np.bincount(rows_u, minlength=n_rows), out=indptr[1:])
        return cls(vals, cols_u, indptr, (n_rows, n_cols))

    @classmethod
    def from_rows(cls, rows: Iterable[Iterable[tuple[int, float]]], n_cols: int) -> CSR:
        """Build from one list of (column, value) pairs per row."""
        r: list[int] = []
        c: list[int] = []
        v: list[float] = []
        n_rows = 0
        for i, row in enumerate(rows):
            n_rows = i + 1
            for col, value in row:
                r.append(i)
                c.append(col)
                v.append(value)
        return cls.from_coo(r, c, v, (n_rows, n_cols))

    @classmethod
    def from_dense(cls, matrix: np.ndarray) -> CSR:
        """Sparse copy of a dense 2-d array (zeros dropped)."""
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.ndim != 2:
            raise ValueError("expected a 2-d array")
        rows, cols = np.nonzero(matrix)
        return cls.from_coo(rows, cols, matrix[rows, cols], matrix.shape)

    # ------------------------------------------------------------------- properties
    @property
    def nnz(self) -> int:
        """Number of stored entries."""
        return int(self.data.size)

    def row_ids(self) -> np.ndarray:
        """The row of every stored entry (the COO row array)."""
        return np.repeat(np.arange(self.shape[0], dtype=np.int64), np.diff(self.indptr))

    def to_dense(self) -> np.ndarray:
        """Dense copy; meant for small matrices and tests."""
        out = np.zeros(self.shape)
        out[self.row_ids(), self.indices] = self.data
        return out

    # ------------------------------------------------------------------- arithmetic
    def __matmul__(self, other: np.ndarray) -> np.ndarray:
        return self.matmul(other)

    def matmul(self, dense: np.ndarray) -> np.ndarray:
        """`self @ dense` for a dense (n_cols x k) or (n_cols,) operand."""
        dense = np.asarray(dense, dtype=np.float64)
        vector = dense.ndim == 1
        if vector:
            dense = dense[:, None]
        if dense.shape[0] != self.shape[1]:
            raise ValueError(f"shape mismatch: {self.shape} @ {dense.shape}")
        k = dense.shape[1]
        out = np.zeros((self.shape[0], k))
        if self.nnz and k:
            row_starts = self.indptr[:-1]
            max_nnz = max(1, _CHUNK_CELLS // max(k, 1))
            row = 0
            n_rows = self.shape[0]
            while row < n_rows:
                # grow the chunk of rows while its entries fit the temporary budget
                limit = self.indptr[row] + max_nnz
                end = int(np.searchsorted(self.indptr, limit, side="right")) - 1
                end = min(max(end, row + 1), n_rows)
                lo, hi = int(self.indptr[row]), int(self.indptr[end])
                if hi > lo:
                    block = dense[self.indices[lo:hi]] * self.data[lo:hi, None]
                    starts = row_starts[row:end] - lo
                    nonempty = np.flatnonzero(np.diff(self.indptr[row : end + 1]) > 0)
                    out[row + nonempty] = np.add.reduceat(block, starts[nonempty], axis=0)
                row = end
        return out[:, 0] if vector else out

    def transpose(self) -> CSR:
        """The transpose as a CSR matrix (cached: gradients need it every iteration)."""
        if self._transposed is None:
            order = np.argsort(self.indices, kind="stable")
            rows = self.row_ids()[order]
            indptr = np.zeros(self.shape[1] + 1, np.int64)
            np.cumsum(np.bincount(self.indices, minlength=self.shape[1]), out=indptr[1:])
            self._transposed = CSR(self.data[order], rows, indptr, (self.shape[1], self.shape[0]))
            self._transposed._transposed = self
        return self._transposed

    @property
    def T(self) -> CSR:  # noqa: N802 - numpy's spelling
        """Alias of `transpose()` so `X.T @ G` reads like numpy."""
        return self.transpose()

    def tmatmul(self, dense: np.ndarray) -> np.ndarray:
        """`self.T @ dense`: the gradient product of a linear model."""
        return self.transpose().matmul(dense)

    def scale_columns(self, factors: np.ndarray) -> CSR:
        """Multiply column j by factors[j] (e.g. idf weighting)."""
        factors = np.asarray(factors, dtype=np.float64)
        return CSR(self.data * factors[self.indices], self.indices, self.indptr, self.shape)

    def scale_rows(self, factors: np.ndarray) -> CSR:
        """Multiply row i by factors[i] (e.g. length normalisation)."""
        factors = np.asarray(factors, dtype=np.float64)
        return CSR(self.data * factors[self.row_ids()], self.indices, self.indptr, self.shape)

    def map_data(self, values: np.ndarray) -> CSR:
        """Same sparsity pattern, new values."""
        return CSR(np.asarray(values, dtype=np.float64), self.indices, self.indptr, self.shape)

    def row_norms(self) -> np.ndarray:
        """Euclidean norm of every row."""
        sq = np.zeros(self.shape[0])
        if self.nnz:
            np.add.at(sq, self.row_ids(), self.data**2)
        return np.sqrt(sq)

    def column_nnz(self) -> np.ndarray:
        """How many rows have a stored entry in each column (document frequency)."""
        return np.bincount(self.indices, minlength=self.shape[1])

    def column_sums(self) -> np.ndarray:
        """Sum over rows of each column."""
        return np.bincount(self.indices, weights=self.data, minlength=self.shape[1])

    # --------------------------------------------------------------------- slicing
    def take_rows(self, rows: np.ndarray | Sequence[int]) -> CSR:
        """The rows at the given indices, in that order (repeats allowed)."""
        rows = np.asarray(rows, dtype=np.int64)
        counts = np.diff(self.indptr)[rows]
        indptr = np.zeros(rows.size + 1, np.int64)
        np.cumsum(counts, out=indptr[1:])
        # position of every kept entry in the source arrays
        offsets = np.arange(int(indptr[-1]), dtype=np.int64) - np.repeat(indptr[:-1], counts)
        src = np.repeat(self.indptr[rows], counts) + offsets
        return CSR(self.data[src], self.indices[src], indptr, (rows.size, self.shape[1]))

    def take_columns(self, columns: np.ndarray | Sequence[int]) -> CSR:
        """Keep the given columns (sorted ascending), renumbered 0..len-1."""
        columns = np.asarray(columns, dtype=np.int64)
        new_index = np.full(self.shape[1], -1, np.int64)
        new_index[columns] = np.arange(columns.size)
        mapped = new_index[self.indices]
        keep = mapped >= 0
        rows = self.row_ids()[keep]
        return CSR.from_coo(rows, mapped[keep], self.data[keep], (self.shape[0], columns.size))

    # -------------------------------------------------------------------- stacking
    @staticmethod
    def hstack(blocks: Sequence[CSR]) -> CSR:
        """Concatenate matrices with the same number of rows side by side."""
        if not blocks:
            raise ValueError("nothing to stack")
        n_rows = blocks[0].shape[0]
        if any(b.shape[0] != n_rows for b in blocks):
            raise ValueError("hstack needs equal row counts")
        rows, cols, vals = [], [], []
        offset = 0
        for block in blocks:
            rows.append(block.row_ids())
            cols.append(block.indices + offset)
            vals.append(block.data)
            offset += block.shape[1]
        return CSR.from_coo(np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), (n_rows, offset))

    @staticmethod
    def vstack(blocks: Sequence[CSR]) -> CSR:
        """Concatenate matrices with the same number of columns on top of each other."""
        if not blocks:
            raise ValueError("nothing to stack")
        n_cols = blocks[0].shape[1]
        if any(b.shape[1] != n_cols for b in blocks):
            raise ValueError("vstack needs equal column counts")
        indptrs = [np.zeros(1, np.int64)]
        offset = 0
        for block in blocks:
            indptrs.append(block.indptr[1:] + offset)
            offset += block.nnz
        return CSR(
            np.concatenate([b.data for b in blocks]),
            np.concatenate([b.indices for b in blocks]),
            np.concatenate(indptrs),
            (sum(b.shape[0] for b in blocks), n_cols),
        )

    # ------------------------------------------------------------------ persistence
    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """Arrays to put into an .npz under `prefix` (plain numeric, no pickling)."""
        return {
            f"{prefix}.data": self.data,
            f"{prefix}.indices": self.indices,
            f"{prefix}.indptr": self.indptr,
            f"{prefix}.shape": np.asarray(self.shape, dtype=np.int64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str) -> CSR:
        """Inverse of `to_arrays`."""
        shape = arrays[f"{prefix}.shape"]
        return cls(
            arrays[f"{prefix}.data"],
            arrays[f"{prefix}.indices"],
            arrays[f"{prefix}.indptr"],
            (int(shape[0]), int(shape[1])),
        )

    @staticmethod
    def has_arrays(arrays: dict[str, np.ndarray], prefix: str) -> bool:
        """Whether `to_arrays(prefix)` output is present."""
        return f"{prefix}.indptr" in arrays

    def equals(self, other: CSR) -> bool:
        """Exact equality of shape and stored entries."""
        return (
            self.shape == other.shape
            and np.array_equal(self.indptr, other.indptr)
            and np.array_equal(self.indices, other.indices)
            and np.array_equal(self.data, other.data)
        )
