import numpy as np
import pytest

import trainkit.ml.sparse as sparse_module
from trainkit.engine.artifact import read_npz, write_npz
from trainkit.ml.sparse import CSR


def random_dense(rng, n, d, density=0.2):
    m = rng.standard_normal((n, d))
    m[rng.random((n, d)) > density] = 0.0
    m[1] = 0.0  # an empty row
    return m


def test_from_coo_sums_duplicates_and_sorts():
    x = CSR.from_coo([1, 0, 1, 1], [2, 1, 0, 2], [1.0, 2.0, 3.0, 4.0], (3, 3))
    assert x.indptr.tolist() == [0, 1, 3, 3]
    assert x.indices.tolist() == [1, 0, 2]
    assert x.data.tolist() == [2.0, 3.0, 5.0]


def test_from_rows_and_to_dense():
    x = CSR.from_rows([[(0, 1.0)], [], [(2, 2.0), (0, 1.5)]], 3)
    np.testing.assert_array_equal(x.to_dense(), [[1, 0, 0], [0, 0, 0], [1.5, 0, 2]])


def test_coordinates_outside_shape_are_rejected():
    with pytest.raises(ValueError):
        CSR.from_coo([0], [5], None, (1, 3))


@pytest.mark.parametrize("k", [1, 3, 40])
def test_matmul_and_transpose_matmul_match_dense(k, monkeypatch):
    rng = np.random.default_rng(0)
    dense = random_dense(rng, 37, 23)
    x = CSR.from_dense(dense)
    w = rng.standard_normal((23, k))
    g = rng.standard_normal((37, k))
    # tiny chunks exercise the chunk boundaries
    monkeypatch.setattr(sparse_module, "_CHUNK_CELLS", 7)
    np.testing.assert_allclose(x @ w, dense @ w, atol=1e-12)
    np.testing.assert_allclose(x.T @ g, dense.T @ g, atol=1e-12)
    np.testing.assert_allclose(x.tmatmul(g), dense.T @ g, atol=1e-12)
    np.testing.assert_allclose(x @ w[:, 0], dense @ w[:, 0], atol=1e-12)


def test_slicing_stacking_and_scaling_match_dense():
    rng = np.random.default_rng(1)
    a = random_dense(rng, 6, 4)
    b = random_dense(rng, 6, 3)
    xa, xb = CSR.from_dense(a), CSR.from_dense(b)
    np.testing.assert_array_equal(CSR.hstack([xa, xb]).to_dense(), np.hstack([a, b]))
    np.testing.assert_array_equal(CSR.vstack([xa, xa]).to_dense(), np.vstack([a, a]))
    rows = np.array([5, 1, 1, 0])
    np.testing.assert_array_equal(xa.take_rows(rows).to_dense(), a[rows])
    np.testing.assert_array_equal(xa.take_columns([0, 2]).to_dense(), a[:, [0, 2]])
    f = np.arange(1, 5, dtype=float)
    np.testing.assert_allclose(xa.scale_columns(f).to_dense(), a * f)
    r = np.arange(1, 7, dtype=float)
    np.testing.assert_allclose(xa.scale_rows(r).to_dense(), a * r[:, None])
    np.testing.assert_allclose(xa.row_norms(), np.linalg.norm(a, axis=1))
    np.testing.assert_array_equal(xa.column_nnz(), (a != 0).sum(axis=0))
    np.testing.assert_allclose(xa.column_sums(), a.sum(axis=0))


def test_empty_matrix_products():
    x = CSR.empty(4, 3)
    assert (x @ np.ones((3, 2))).shape == (4, 2)
    assert not (x.T @ np.ones((4, 2))).any()


def test_npz_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(2)
    x = CSR.from_dense(random_dense(rng, 9, 5))
    write_npz(tmp_path / "m.npz", x.to_arrays("feat"))
    y = CSR.from_arrays(read_npz(tmp_path / "m.npz"), "feat")
    assert x.equals(y)
