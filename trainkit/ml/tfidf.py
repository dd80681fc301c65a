"""TF-IDF weighting of sparse count blocks.

Raw counts let long messages and frequent character n-grams dominate a linear model;
idf down-weights n-grams that occur everywhere and the row normalisation removes the
length effect. Each block (featurizer) is normalised on its own so a large char n-gram
vocabulary does not drown a small word or regex block.
"""

from __future__ import annotations

import numpy as np

from trainkit.ml.sparse import CSR


def fit_idf(counts: CSR) -> np.ndarray:
    """Smoothed inverse document frequency, ln((1 + n) / (1 + df)) + 1, per column."""
    n = counts.shape[0]
    df = counts.column_nnz().astype(np.float64)
    return np.log((1.0 + n) / (1.0 + df)) + 1.0


def l2_normalize_rows(matrix: CSR) -> CSR:
    """Rows scaled to unit Euclidean length (all-zero rows stay zero)."""
    norms = matrix.row_norms()
    norms[norms == 0] = 1.0
    return matrix.scale_rows(1.0 / norms)


def tfidf_transform(counts: CSR, idf: np.ndarray) -> CSR:
    """Counts weighted by `idf`, then each row L2-normalised."""
    if idf.shape != (counts.shape[1],):
        raise ValueError(f"idf has {idf.size} entries for {counts.shape[1]} columns")
    return l2_normalize_rows(counts.scale_columns(idf))
