"""Every backward pass agrees with finite differences of its forward pass."""

from __future__ import annotations

import numpy as np
import pytest

from trainkit.ml import layers as L
from trainkit.ml.sparse import CSR


def numeric_grad(f, x, eps=1e-6):
    grad = np.zeros_like(x)
    flat = x.reshape(-1)
    g = grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        g[i] = (up - down) / (2 * eps)
    return grad


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_dense_relu_layer_norm_chain(rng):
    x = rng.normal(size=(4, 3, 5))
    w = rng.normal(size=(5, 6))
    b = rng.normal(size=6)
    gamma = rng.normal(size=6)
    beta = rng.normal(size=6)
    probe = rng.normal(size=(4, 3, 6))

    def loss():
        h = L.relu_forward(L.dense_forward(x, w, b))
        y, _ = L.layer_norm_forward(h, gamma, beta)
        return float((y * probe).sum())

    h = L.relu_forward(L.dense_forward(x, w, b))
    _, cache = L.layer_norm_forward(h, gamma, beta)
    dh, dgamma, dbeta = L.layer_norm_backward(cache, probe)
    dpre = L.relu_backward(h, dh)
    dx, dw, db = L.dense_backward(x, w, dpre)
    for analytic, param in ((dx, x), (dw, w), (db, b), (dgamma, gamma), (dbeta, beta)):
        np.testing.assert_allclose(analytic, numeric_grad(loss, param), rtol=1e-5, atol=1e-6)


def test_sparse_dense_gradient_touches_only_active_rows(rng):
    dense = rng.normal(size=(5, 12)) * (rng.random((5, 12)) < 0.3)
    dense[:, 7] = 0.0
    x = CSR.from_dense(dense)
    w = rng.normal(size=(12, 4))
    b = rng.normal(size=4)
    probe = rng.normal(size=(5, 4))
    batch = L.SparseBatch.from_csr(x)
    out = L.sparse_dense_forward(batch, w, b)
    np.testing.assert_allclose(out, dense @ w + b)
    dw_rows, db = L.sparse_dense_backward(batch, probe)
    full = np.zeros_like(w)
    full[batch.columns] = dw_rows
    assert 7 not in batch.columns
    np.testing.assert_allclose(full, numeric_grad(lambda: float(((dense @ w + b) * probe).sum()), w), atol=1e-6)
    np.testing.assert_allclose(db, probe.sum(axis=0))


def test_l2_normalize_and_shift(rng):
    x = rng.normal(size=(3, 4))
    probe = rng.normal(size=(3, 4))
    out, norms = L.l2_normalize_forward(x)
    grad = L.l2_normalize_backward(out, norms, probe)
    np.testing.assert_allclose(grad, numeric_grad(lambda: float((L.l2_normalize_forward(x)[0] * probe).sum()), x), atol=1e-6)
    h = rng.normal(size=(2, 5, 3))
    probe = rng.normal(size=(2, 5, 3))
    for offset in (-2, -1, 0, 1, 2, 6):
        grad = L.shift_backward(probe, offset)
        expected = numeric_grad(lambda o=offset: float((L.shift_forward(h, o) * probe).sum()), h)
        np.testing.assert_allclose(grad, expected, atol=1e-6)


def test_dropout_is_seeded_and_inverted():
    x = np.ones((200, 50))
    a, mask_a = L.dropout_forward(x, 0.2, np.random.default_rng(3))
    b, _ = L.dropout_forward(x, 0.2, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert abs(a.mean() - 1.0) < 0.05
    assert L.dropout_forward(x, 0.2, None)[1] is None
    np.testing.assert_array_equal(L.dropout_backward(mask_a, x), mask_a)
    sparse = CSR.from_dense(np.ones((10, 10)))
    dropped = L.sparse_dropout(sparse, 0.5, np.random.default_rng(1))
    assert set(np.unique(dropped.data)) <= {0.0, 2.0}


def test_softmax_cross_entropy_gradient(rng):
    logits = rng.normal(size=(5, 4))
    targets = np.array([0, 3, 1, 1, 2])
    weights = np.array([1.0, 0.0, 2.0, 1.0, 1.0])
    _, grad = L.softmax_cross_entropy(logits, targets, weights)
    expected = numeric_grad(lambda: L.softmax_cross_entropy(logits, targets, weights)[0], logits)
    np.testing.assert_allclose(grad, expected, atol=1e-6)


@pytest.mark.parametrize(
    "config",
    [
        L.SimilarityLossConfig("cross_entropy"),
        L.SimilarityLossConfig("cross_entropy", constrain_similarities=True),
        L.SimilarityLossConfig("margin"),
        L.SimilarityLossConfig("margin", use_maximum_negative_similarity=False),
    ],
)
@pytest.mark.parametrize("sampled", [False, True])
def test_similarity_loss_gradient(rng, config, sampled):
    inputs = rng.normal(size=(6, 3))
    labels = rng.normal(size=(5, 3))
    positive = np.array([0, 1, 4, 2, 2, 3])
    candidates = L.sample_negatives(rng, positive, 5, 2) if sampled else None
    result = L.similarity_loss(inputs, labels, positive, candidates, config)

    def loss():
        return L.similarity_loss(inputs, labels, positive, candidates, config).loss

    np.testing.assert_allclose(result.grad_inputs, numeric_grad(loss, inputs), atol=1e-5)
    np.testing.assert_allclose(result.grad_labels, numeric_grad(loss, labels), atol=1e-5)


def test_sample_negatives_excludes_positive(rng):
    positive = rng.integers(0, 6, size=50)
    cand = L.sample_negatives(rng, positive, 6, 3)
    assert cand.shape == (50, 4)
    assert (cand[:, 0] == positive).all()
    assert not (cand[:, 1:] == positive[:, None]).any()
    assert all(len(set(row)) == 4 for row in cand.tolist())


def test_adam_minimises_and_lazy_rows_stay_put():
    params = {"w": np.array([[3.0, -2.0], [1.0, 1.0]]), "b": np.array([5.0])}
    opt = L.Adam(learning_rate=0.1)
    for _ in range(300):
        grads = {"w": 2 * params["w"][:1], "b": 2 * params["b"]}
        opt.step(params, grads, rows={"w": np.array([0])})
    assert np.abs(params["w"][0]).max() < 0.05
    assert abs(params["b"][0]) < 0.05
    np.testing.assert_array_equal(params["w"][1], [1.0, 1.0])


def test_connection_mask_keeps_every_unit():
    mask = L.connection_mask(np.random.default_rng(0), 3, 50, 0.05)
    assert mask is not None and mask.any(axis=0).all()
    assert L.connection_mask(np.random.default_rng(0), 3, 5, 1.0) is None


@pytest.mark.parametrize("dense_limit", [0, 10_000_000])
def test_sparse_batch_paths_agree(rng, dense_limit):
    dense = rng.normal(size=(30, 400)) * (rng.random((30, 400)) < 0.01)
    dense[3] = 0.0
    batch = L.SparseBatch.from_csr(CSR.from_dense(dense), np.float64, dense_limit)
    assert (batch.dense is None) == (dense_limit == 0)
    assert (batch.padded is None) == (dense_limit > 0)
    w = rng.normal(size=(400, 5))
    g = rng.normal(size=(30, 5))
    np.testing.assert_allclose(L.sparse_dense_forward(batch, w, np.zeros(5)), dense @ w, atol=1e-12)
    full = np.zeros_like(w)
    full[batch.columns] = L.sparse_dense_backward(batch, g)[0]
    np.testing.assert_allclose(full, dense.T @ g, atol=1e-12)


def test_sparse_batch_chooses_its_product_by_cells_per_entry(rng):
    dense = rng.normal(size=(40, 300)) * (rng.random((40, 300)) < 0.02)  # ~50 cells per entry
    matrix = CSR.from_dense(dense)
    assert L.SparseBatch.from_csr(matrix, np.float32).dense is not None
    sparse = L.SparseBatch.from_csr(matrix, np.float32, cells_per_entry=L.SPARSE_CELLS_PER_ENTRY)
    assert sparse.dense is None and sparse.padded is not None
    w = rng.normal(size=(300, 6)).astype(np.float32)
    g = rng.normal(size=(40, 6)).astype(np.float32)
    out = L.sparse_dense_forward(sparse, w, np.zeros(6, np.float32))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, dense @ w, rtol=1e-5, atol=1e-5)
    full = np.zeros_like(w)
    full[sparse.columns] = L.sparse_dense_backward(sparse, g)[0]
    np.testing.assert_allclose(full, dense.T @ g, rtol=1e-5, atol=1e-5)


def test_dense_unique_matches_numpy(rng):
    for size in (0, 1, 40, 2000):
        values = rng.integers(0, 300, size)
        unique, inverse = L.dense_unique(values, 300)
        expected, expected_inverse = np.unique(values, return_inverse=True)
        np.testing.assert_array_equal(unique, expected)
        np.testing.assert_array_equal(inverse, expected_inverse.reshape(-1))


def test_dropout_keeps_single_precision():
    x = np.ones((50, 8), dtype=np.float32)
    out, mask = L.dropout_forward(x, 0.25, np.random.default_rng(0))
    assert out.dtype == np.float32 and mask is not None and mask.dtype == np.float32
    assert set(np.unique(out).tolist()) <= {0.0, np.float32(1.0 / 0.75)}


def test_sparse_batch_dense_path_keeps_its_precision(rng):
    dense = rng.normal(size=(20, 60)) * (rng.random((20, 60)) < 0.2)
    batch = L.SparseBatch.from_csr(CSR.from_dense(dense), np.float32)
    assert batch.dense is not None
    w = rng.normal(size=(60, 4))
    assert batch.matmul(w[batch.columns]).dtype == np.float32
    assert batch.tmatmul(rng.normal(size=(20, 4))).dtype == np.float32


def test_adam_row_and_full_updates_agree():
    # a row update over all rows must equal the full update, step after step
    rng = np.random.default_rng(3)
    start = rng.normal(size=(6, 3)).astype(np.float32)
    full, rows = {"w": start.copy()}, {"w": start.copy()}
    opt_full, opt_rows = L.Adam(0.01), L.Adam(0.01)
    for _ in range(5):
        grad = rng.normal(size=(6, 3)).astype(np.float32)
        opt_full.step(full, {"w": grad})
        opt_rows.step(rows, {"w": grad}, {"w": np.arange(6)})
    np.testing.assert_array_equal(full["w"], rows["w"])


def test_adam_rows_updated_in_two_parts_on_two_threads_equal_one_update():
    """DIET's step updates the halves of a sparse layer's rows on two threads: after
    `ensure_moments` the parts write disjoint rows of the same moments, bit for bit as
    one update (with L2 and a connection mask)."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(4)
    start = rng.normal(size=(50, 8)).astype(np.float32)
    mask = (rng.random((50, 8)) < 0.8).astype(np.float32)
    whole, parts = {"w": start.copy()}, {"w": start.copy()}
    opt_whole, opt_parts = L.Adam(0.01), L.Adam(0.01)
    with ThreadPoolExecutor(1) as pool:
        for _ in range(4):
            idx = np.sort(rng.choice(50, 30, replace=False))
            grad = rng.normal(size=(30, 8)).astype(np.float32)
            opt_whole.step(whole, {"w": grad}, {"w": idx}, {"w": mask}, {"w": 0.01})
            opt_parts.advance()
            opt_parts.ensure_moments(parts, ["w"])
            later = pool.submit(opt_parts.update, parts, {"w": grad[15:]}, {"w": idx[15:]}, {"w": mask}, {"w": 0.01})
            opt_parts.update(parts, {"w": grad[:15]}, {"w": idx[:15]}, {"w": mask}, {"w": 0.01})
            later.result()
    np.testing.assert_array_equal(whole["w"], parts["w"])
    np.testing.assert_array_equal(opt_whole.m["w"], opt_parts.m["w"])
    np.testing.assert_array_equal(opt_whole.v["w"], opt_parts.v["w"])
