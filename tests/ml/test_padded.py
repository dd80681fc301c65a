"""Padded-gather products equal the dense products they replace."""

from __future__ import annotations

import numpy as np
import pytest

from trainkit.ml.padded import PaddedRows
from trainkit.ml.sparse import CSR


def random_csr(seed, rows=37, cols=53, density=0.15):
    rng = np.random.default_rng(seed)
    dense = rng.normal(size=(rows, cols)) * (rng.random((rows, cols)) < density)
    dense[3] = 0.0  # an empty row
    dense[5, :40] = rng.normal(size=40)  # a long row
    return CSR.from_dense(dense), dense, rng


@pytest.mark.parametrize("block_cells", [1, 7, 64, 4096])
def test_product_equals_the_dense_product(block_cells):
    matrix, dense, rng = random_csr(block_cells)
    weights = rng.normal(size=(matrix.shape[1], 6))
    padded = PaddedRows.from_csr(matrix, block_cells=block_cells)
    np.testing.assert_allclose(padded.matmul(weights), dense @ weights, atol=1e-12)
    # the transpose product, as the backward pass uses it
    grad = rng.normal(size=(matrix.shape[0], 4))
    np.testing.assert_allclose(PaddedRows.transposed(matrix, block_cells=block_cells).matmul(grad),
                               dense.T @ grad, atol=1e-12)


def test_transpose_of_a_matrix_with_more_columns_than_sixteen_bits_hold():
    rng = np.random.default_rng(4)
    cols = rng.integers(0, 70_000, size=50)
    matrix = CSR.from_coo(np.arange(50) % 7, cols, rng.normal(size=50), (7, 70_000))
    grad = rng.normal(size=(7, 3))
    expected = matrix.transpose().matmul(grad)
    np.testing.assert_allclose(PaddedRows.transposed(matrix).matmul(grad), expected, atol=1e-12)


def test_single_precision_operands_give_single_precision_results():
    matrix, dense, rng = random_csr(2)
    weights = rng.normal(size=(matrix.shape[1], 5)).astype(np.float32)
    out = PaddedRows.from_csr(matrix, np.float32).matmul(weights)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, dense @ weights, rtol=1e-5, atol=1e-5)


def test_sorting_keeps_padding_close_to_the_stored_entries():
    matrix, _, _ = random_csr(3, rows=400, cols=300, density=0.05)
    padded = PaddedRows.from_csr(matrix, block_cells=256)
    assert matrix.nnz <= padded.cells <= 1.3 * matrix.nnz


def test_empty_matrices_and_shape_errors():
    empty = CSR.empty(4, 6)
    out = PaddedRows.from_csr(empty).matmul(np.ones((6, 3)))
    assert out.shape == (4, 3) and not out.any()
    with pytest.raises(ValueError, match="shape mismatch"):
        PaddedRows.from_csr(empty).matmul(np.ones((5, 3)))


@pytest.mark.parametrize("block_cells", [7, 64])
def test_a_product_shared_with_a_lane_is_the_same_bit_for_bit(block_cells):
    from trainkit.ml.lanes import Lane

    matrix, _, rng = random_csr(block_cells + 1, rows=90)
    weights = rng.normal(size=(matrix.shape[1], 5)).astype(np.float32)
    padded = PaddedRows.from_csr(matrix, np.float32, block_cells=block_cells)
    assert len(padded.index) > 2  # the halves really split the blocks
    alone = padded.matmul(weights)
    with Lane() as lane:
        shared = [padded.matmul(weights, lane) for _ in range(5)]
    for product in shared:
        np.testing.assert_array_equal(product, alone)


def test_rows_of_one_entry_are_exact_single_products():
    """A block of one-entry rows (the commonest in a gradient's transpose) takes a
    multiply instead of a batched matmul; the numbers are the one product per cell."""
    rng = np.random.default_rng(9)
    cols = rng.integers(0, 40, size=300)
    values = rng.normal(size=300).astype(np.float32)
    rows = np.arange(300)
    rows[::7] = 0  # some rows hold several entries, others none
    matrix = CSR.from_coo(rows, cols, values, (300, 40))
    weights = rng.normal(size=(40, 8)).astype(np.float32)
    padded = PaddedRows.from_csr(matrix, np.float32, block_cells=64)
    assert any(index.shape[1] == 1 for index in padded.index)
    out = padded.matmul(weights)
    single = np.diff(matrix.indptr) == 1
    first = matrix.indptr[:-1][single]
    expected = matrix.data[first, None].astype(np.float32) * weights[matrix.indices[first]]
    np.testing.assert_array_equal(out[single], expected)
    np.testing.assert_allclose(out, matrix.to_dense().astype(np.float32) @ weights, rtol=1e-5, atol=1e-5)
