"""Multinomial logistic (softmax) regression on sparse features.

The objective is the one scikit-learn's `LogisticRegression(solver="lbfgs")` minimises
for the multinomial case, so options carry the same meaning for users coming from Rasa:
the weighted mean cross-entropy plus `||W||^2 / (2 C n)`, intercepts unpenalised. Weights
start at zero, which makes training fully deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainkit.ml.optim import OptimResult, lbfgs
from trainkit.ml.sparse import CSR


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum for numerical safety."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def balanced_class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """n_samples / (n_classes * count(c)) per sample, sklearn's 'balanced' heuristic.

    Rare intents would otherwise be drowned by frequent ones.
    """
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    present = counts > 0
    per_class = np.zeros(n_classes)
    per_class[present] = y.size / (np.count_nonzero(present) * counts[present])
    return per_class[y]


@dataclass
class SoftmaxModel:
    """Learned weights: `coef` (n_features x n_classes) and `intercept` (n_classes,)."""

    coef: np.ndarray
    intercept: np.ndarray

    def decision_function(self, X: CSR) -> np.ndarray:  # noqa: N803 - conventional name
        """Class scores before the softmax."""
        return X.matmul(self.coef) + self.intercept

    def predict_proba(self, X: CSR) -> np.ndarray:  # noqa: N803
        """Class probabilities, one row per sample."""
        return softmax(self.decision_function(X))


def fit_softmax(
    X: CSR,  # noqa: N803
    y: np.ndarray,
    n_classes: int,
    C: float = 1.0,  # noqa: N803 - sklearn's name
    sample_weight: np.ndarray | None = None,
    max_iter: int = 100,
    tol: float = 1e-4,
    start: SoftmaxModel | None = None,
) -> tuple[SoftmaxModel, OptimResult]:
    """Fit multinomial logistic regression with L-BFGS, from zero or from `start`'s weights.

    One objective evaluation is one sparse product and one transposed product, so the cost
    per iteration is O(nnz x n_classes) regardless of the vocabulary size.
    """
    y = np.asarray(y, dtype=np.int64)
    n, d = X.shape
    k = n_classes
    weights = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    total = float(weights.sum())
    onehot = np.zeros((n, k))
    onehot[np.arange(n), y] = 1.0
    penalty = 1.0 / (C * total)
    X.transpose()  # build the cached transpose once, outside the iterations

    def objective(params: np.ndarray) -> tuple[float, np.ndarray]:
        coef = params[: d * k].reshape(d, k)
        intercept = params[d * k :]
        logits = X.matmul(coef) + intercept
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        log_prob = shifted - log_norm
        loss = -float(np.sum(weights * log_prob[np.arange(n), y])) / total
        loss += 0.5 * penalty * float(np.sum(coef * coef))
        residual = (np.exp(log_prob) - onehot) * (weights / total)[:, None]
        grad_coef = X.tmatmul(residual) + penalty * coef
        grad_intercept = residual.sum(axis=0)
        return loss, np.concatenate([grad_coef.ravel(), grad_intercept])

    x0 = np.zeros(d * k + k)
    if start is not None:
        if start.coef.shape != (d, k):
            raise ValueError(f"start weights have shape {start.coef.shape}, the data needs {(d, k)}")
        x0 = np.concatenate([np.asarray(start.coef, np.float64).ravel(), np.asarray(start.intercept, np.float64)])
    result = lbfgs(objective, x0, max_iter=max_iter, gtol=tol)
    coef = result.x[: d * k].reshape(d, k).copy()
    intercept = result.x[d * k :].copy()
    return SoftmaxModel(coef, intercept), result
