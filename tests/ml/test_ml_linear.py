import numpy as np

from trainkit.ml.linear import balanced_class_weights, fit_softmax, softmax
from trainkit.ml.optim import lbfgs
from trainkit.ml.sparse import CSR
from trainkit.ml.tfidf import fit_idf, tfidf_transform


def test_lbfgs_minimises_an_ill_conditioned_quadratic():
    scales = np.array([1.0, 10.0, 100.0, 1000.0])
    target = np.array([1.0, -2.0, 3.0, -4.0])

    def objective(x):
        diff = x - target
        return 0.5 * float(np.sum(scales * diff**2)), scales * diff

    result = lbfgs(objective, np.zeros(4), max_iter=200, gtol=1e-8, ftol=0.0)
    assert result.converged
    np.testing.assert_allclose(result.x, target, atol=1e-6)


def test_lbfgs_rosenbrock():
    def objective(v):
        x, y = v
        f = (1 - x) ** 2 + 100 * (y - x * x) ** 2
        g = np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])
        return float(f), g

    result = lbfgs(objective, np.array([-1.2, 1.0]), max_iter=500, gtol=1e-7, ftol=0.0)
    np.testing.assert_allclose(result.x, [1.0, 1.0], atol=1e-4)


def test_softmax_fit_reaches_the_first_order_optimum():
    rng = np.random.default_rng(0)
    dense = rng.random((12, 5)) * (rng.random((12, 5)) > 0.5)
    x = CSR.from_dense(dense)
    y = rng.integers(0, 3, 12)
    # at the optimum the gradient of sklearn's objective vanishes
    model, result = fit_softmax(x, y, 3, C=1.0, max_iter=500, tol=1e-10)
    p = model.predict_proba(x)
    onehot = np.eye(3)[y]
    grad = dense.T @ (p - onehot) / 12 + model.coef / (1.0 * 12)
    np.testing.assert_allclose(grad, 0.0, atol=1e-6)
    np.testing.assert_allclose((p - onehot).sum(axis=0), 0.0, atol=1e-6)


def test_softmax_learns_separable_data_deterministically():
    rng = np.random.default_rng(3)
    centers = np.eye(4) * 3
    y = np.repeat(np.arange(4), 25)
    dense = np.clip(centers[y] + rng.normal(0, 0.5, (100, 4)), 0, None)
    x = CSR.from_dense(dense)
    weights = balanced_class_weights(y, 4)
    m1, _ = fit_softmax(x, y, 4, C=10.0, sample_weight=weights)
    m2, _ = fit_softmax(x, y, 4, C=10.0, sample_weight=weights)
    assert (m1.predict_proba(x).argmax(1) == y).mean() == 1.0
    np.testing.assert_array_equal(m1.coef, m2.coef)


def test_balanced_weights_equalise_class_mass():
    y = np.array([0, 0, 0, 1])
    w = balanced_class_weights(y, 2)
    assert w[y == 0].sum() == w[y == 1].sum() == 2.0


def test_softmax_rows_sum_to_one():
    p = softmax(np.array([[1000.0, 0.0], [1.0, 1.0]]))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert p[1, 0] == 0.5


def test_tfidf_matches_formula():
    counts = np.array([[2.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    idf = fit_idf(CSR.from_dense(counts))
    expected_idf = np.log(3 / (1 + np.array([1, 1, 2]))) + 1
    np.testing.assert_allclose(idf, expected_idf)
    weighted = counts * expected_idf
    expected = weighted / np.linalg.norm(weighted, axis=1, keepdims=True)
    np.testing.assert_allclose(tfidf_transform(CSR.from_dense(counts), idf).to_dense(), expected)
