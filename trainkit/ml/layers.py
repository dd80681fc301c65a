"""Neural-network building blocks in numpy, each forward pass beside its backward pass.

There is no autodiff here, so every layer is a pair of functions: the forward pass
returns what the backward pass needs, and the backward pass returns the gradients of the
layer's inputs and parameters. Keeping the two side by side makes each derivation easy to
check against the other, and the tests compare every backward pass with finite
differences.

Sparse inputs stay sparse: the first layer of a text model multiplies a CSR matrix by its
weights, and its weight gradient only touches the rows (features) that occur in the
batch. `SparseBatch` captures that restriction once per batch so both the product and the
gradient work on the few hundred active rows instead of the whole vocabulary, and `Adam`
can update just those rows (the "lazy" variant of Adam used for embeddings).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from trainkit.ml.lanes import Lane, share
from trainkit.ml.padded import PaddedRows
from trainkit.ml.sparse import CSR

# --------------------------------------------------------------------------- init


def glorot_uniform(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """Weights scaled so activations keep their variance through the layer (Glorot & Bengio 2010)."""
    limit = np.sqrt(6.0 / max(fan_in + fan_out, 1))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out))


def connection_mask(
    rng: np.random.Generator, fan_in: int, fan_out: int, density: float
) -> np.ndarray | None:
    """A fixed random pattern of kept weights, Rasa's `connection_density` for sparse layers.

    Every output unit keeps at least one input, so no unit is dead from the start. Returns
    None when all connections are kept.
    """
    if density >= 1.0:
        return None
    mask = rng.random((fan_in, fan_out)) < density
    dead = ~mask.any(axis=0)
    if dead.any() and fan_in:
        mask[rng.integers(0, fan_in, size=int(dead.sum())), np.flatnonzero(dead)] = True
    return mask


# ------------------------------------------------------------------ sparse input


# A batch is multiplied as a dense block when that block has at most `cells_per_entry`
# cells per stored entry, else by padded gathers (`trainkit.ml.padded`). A
# single-precision BLAS product costs ~4 ns per cell (128 outputs; forward and backward
# together ~8 ns), the padded path ~200 ns per stored entry for both products and
# building its blocks, so the break-even is about 25 cells per entry: DIET's sentence
# batches of 64 messages stay dense, its token batches (~30 entries per row over
# thousands of columns) are ten to twenty times faster padded. The default stays at the
# older, dense-leaning 600, which TED's history batches were tuned with ...
DENSE_CELLS_PER_ENTRY = 600
SPARSE_CELLS_PER_ENTRY = 25
# ... and a dense block never has more than this many cells.
DENSE_BLOCK_CELLS = 16_000_000


def dense_unique(values: np.ndarray, bound: int) -> tuple[np.ndarray, np.ndarray]:
    """`np.unique(values, return_inverse=True)` for integers in [0, bound).

    A presence table and a running count replace the sort: the ids of a batch (its
    feature columns, its token rows) number tens of thousands, the bound about as many,
    and this runs several times per training step.
    """
    values = np.asarray(values, dtype=np.int64)
    present = np.zeros(max(int(bound), 0), dtype=bool)
    present[values] = True
    unique = np.flatnonzero(present)
    rank = np.cumsum(present, dtype=np.int64) - 1
    return unique, rank[values]


@dataclass
class SparseBatch:
    """A CSR batch restricted to the columns it uses.

    `local` has the same rows as the batch but only `columns.size` columns, renumbered;
    multiplying it with `W[columns]` equals multiplying the full batch with `W`. When
    the (rows x columns) block is not too sparse (see `cells_per_entry`) it is
    kept as a dense array (`dense`) in `dtype`, and both products are one BLAS call.
    Sparser batches use padded gathers: `padded` for the forward product, built up
    front, and the blocks of the transpose for the gradient, built on first use.
    """

    local: CSR
    columns: np.ndarray
    dense: np.ndarray | None = None
    dtype: type = np.float64
    padded: PaddedRows | None = None
    _padded_t: PaddedRows | None = None

    @classmethod
    def from_csr(
        cls,
        matrix: CSR,
        dtype: type = np.float64,
        dense_limit: int = DENSE_BLOCK_CELLS,
        cells_per_entry: float = DENSE_CELLS_PER_ENTRY,
    ) -> SparseBatch:
        """Find the active columns of `matrix` and renumber them 0..k-1, and choose the
        product (dense below `cells_per_entry` cells per stored entry)."""
        columns, inverse = dense_unique(matrix.indices, matrix.shape[1])
        local = CSR(matrix.data, inverse, matrix.indptr, (matrix.shape[0], columns.size))
        cells = matrix.shape[0] * columns.size
        if cells <= dense_limit and cells <= cells_per_entry * max(matrix.nnz, 1):
            dense = np.zeros(cells, dtype=dtype)
            dense[local.row_ids() * columns.size + inverse] = matrix.data
            return cls(local, columns, dense.reshape(matrix.shape[0], columns.size), dtype)
        return cls(local, columns, None, dtype, PaddedRows.from_csr(local, dtype))

    def matmul(self, weight_rows: np.ndarray, lane: Lane | None = None) -> np.ndarray:
        """`local @ weight_rows` for the active rows of a weight matrix (padded blocks
        shared with `lane`, see `PaddedRows.matmul`)."""
        if self.dense is not None:
            # mixed precision would make numpy upcast the whole block for every product
            return self.dense @ weight_rows.astype(self.dtype, copy=False)
        if self.padded is None:
            self.padded = PaddedRows.from_csr(self.local, self.dtype)
        return self.padded.matmul(weight_rows, lane)

    def prepare_gradient(self) -> SparseBatch:
        """Build the transpose's blocks now rather than at the first `tmatmul`, e.g. on
        a thread that makes the next batch while the current one trains."""
        if self.dense is None and self._padded_t is None:
            self._padded_t = PaddedRows.transposed(self.local, self.dtype)
        return self

    def tmatmul(self, grad: np.ndarray, lane: Lane | None = None) -> np.ndarray:
        """`local.T @ grad`: one gradient row per active column."""
        if self.dense is not None:
            return self.dense.T @ grad.astype(self.dtype, copy=False)
        self.prepare_gradient()
        assert self._padded_t is not None
        return self._padded_t.matmul(grad, lane)


def sparse_dense_forward(batch: SparseBatch, weight: np.ndarray, bias: np.ndarray,
                         lane: Lane | None = None) -> np.ndarray:
    """`X @ W + b` for a sparse batch, reading only the weight rows the batch uses."""
    return batch.matmul(np.take(weight, batch.columns, axis=0), lane) + bias


def sparse_dense_backward(
    batch: SparseBatch, grad_out: np.ndarray, lane: Lane | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients (rows of dW for `batch.columns`, db); the input is data, so it gets none."""
    return batch.tmatmul(grad_out, lane), grad_out.sum(axis=0)


def sparse_dropout(
    matrix: CSR, rate: float, rng: np.random.Generator, protected: np.ndarray | None = None
) -> CSR:
    """Drop stored entries with probability `rate` and rescale the rest (inverted dropout).

    This is dropout on the input of a sparse layer, as Rasa's `use_sparse_input_dropout`
    does it: only non-zero features can be dropped, so the cost is O(nnz). Entries in
    `protected` columns (dense features, which Rasa's `use_dense_input_dropout` leaves
    alone by default) are kept as they are.
    """
    if rate <= 0.0 or matrix.nnz == 0:
        return matrix
    keep = rng.random(matrix.nnz) >= rate
    factor = keep / (1.0 - rate)
    if protected is not None and protected.any():
        factor = np.where(protected[matrix.indices], 1.0, factor)
    return matrix.map_data(matrix.data * factor)


# ------------------------------------------------------------------------- dense


def dense_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """`x @ W + b` over the last axis (so it works per token of a padded batch too)."""
    return x @ weight + bias


def dense_backward(
    x: np.ndarray, weight: np.ndarray, grad_out: np.ndarray, lane: Lane | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients (dx, dW, db) of `x @ W + b`; leading axes of `x` are treated as a batch.
    With a lane, the input gradient is offered to it (`trainkit.ml.lanes.share`)."""
    flat_x = x.reshape(-1, x.shape[-1])
    flat_g = grad_out.reshape(-1, grad_out.shape[-1])
    # np.dot hands the transposed view to BLAS as is; `@` on it was 3x slower for the
    # token-context layer's float32 shapes (numpy 2.4)
    (d_weight, d_bias), d_x = share(lambda: (flat_x.T @ flat_g, flat_g.sum(axis=0)),
                                    lambda: np.dot(grad_out, weight.T), lane)
    return d_x, d_weight, d_bias


def relu_forward(x: np.ndarray) -> np.ndarray:
    """max(x, 0)."""
    return np.maximum(x, 0.0)


def relu_backward(out: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
    """Pass the gradient where the unit was active; `out` is the forward output."""
    return grad_out * (out > 0.0)


def dropout_mask(
    shape: tuple[int, ...], rate: float, rng: np.random.Generator | None, dtype: type = np.float64
) -> np.ndarray | None:
    """The scaled keep-mask of inverted dropout (None without a generator or at a zero
    rate). Drawing it apart from `dropout_forward` lets a training loop draw a step's
    masks ahead, in the order the forward pass uses them, on another thread."""
    if rng is None or rate <= 0.0:
        return None
    # the mask takes the input's precision: a double mask would silently promote a
    # single-precision network to double from the first dropout layer on
    draw_dtype = np.float32 if np.dtype(dtype) == np.float32 else np.float64
    mask = (rng.random(shape, dtype=draw_dtype) >= rate).astype(dtype)
    mask *= np.dtype(dtype).type(1.0 / (1.0 - rate))
    return mask


def dropout_forward(
    x: np.ndarray, rate: float, rng: np.random.Generator | None, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Inverted dropout; returns the output and the scaled mask the backward pass needs.

    With no generator (prediction) or a zero rate this is the identity, so the same code
    path serves training and inference. A `mask` drawn beforehand (`dropout_mask`) is
    used as it is.
    """
    if mask is None:
        mask = dropout_mask(x.shape, rate, rng, x.dtype)
    if mask is None:
        return x, None
    return x * mask, mask


def dropout_backward(mask: np.ndarray | None, grad_out: np.ndarray) -> np.ndarray:
    """The gradient through the dropout mask."""
    return grad_out if mask is None else grad_out * mask


@dataclass
class LayerNormCache:
    """What the layer-norm backward pass needs from the forward pass."""

    normed: np.ndarray
    inv_std: np.ndarray
    gamma: np.ndarray


def layer_norm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-6
) -> tuple[np.ndarray, LayerNormCache]:
    """Normalise the last axis to zero mean and unit variance, then scale and shift."""
    mean = x.mean(axis=-1, keepdims=True)
    centered = x - mean
    inv_std = 1.0 / np.sqrt((centered**2).mean(axis=-1, keepdims=True) + eps)
    normed = centered * inv_std
    return normed * gamma + beta, LayerNormCache(normed, inv_std, gamma)


def layer_norm_backward(
    cache: LayerNormCache, grad_out: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients (dx, dgamma, dbeta) of layer normalisation."""
    n = grad_out.shape[-1]
    flat_g = grad_out.reshape(-1, n)
    flat_normed = cache.normed.reshape(-1, n)
    d_gamma = (flat_g * flat_normed).sum(axis=0)
    d_beta = flat_g.sum(axis=0)
    d_normed = grad_out * cache.gamma
    dx = cache.inv_std * (
        d_normed
        - d_normed.mean(axis=-1, keepdims=True)
        - cache.normed * (d_normed * cache.normed).mean(axis=-1, keepdims=True)
    )
    return dx, d_gamma, d_beta


def l2_normalize_forward(x: np.ndarray, eps: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """Unit-length rows (for cosine similarity); returns the output and the row norms."""
    norms = np.sqrt((x * x).sum(axis=-1, keepdims=True)) + eps
    return x / norms, norms


def l2_normalize_backward(
    out: np.ndarray, norms: np.ndarray, grad_out: np.ndarray
) -> np.ndarray:
    """Gradient of x / |x|: the component of the incoming gradient orthogonal to the output."""
    return (grad_out - out * (grad_out * out).sum(axis=-1, keepdims=True)) / norms


# ------------------------------------------------------------- sequence context


def shift_forward(h: np.ndarray, offset: int) -> np.ndarray:
    """`out[:, t] = h[:, t + offset]`, zero where that position falls outside the sequence.

    Concatenating a few shifted copies gives each token a view of its neighbours (a
    one-dimensional convolution), the cheap stand-in for the transformer Rasa uses.
    Padding positions must already be zero in `h`.
    """
    out = np.zeros_like(h)
    steps = h.shape[1]
    if offset > 0 and offset < steps:
        out[:, : steps - offset] = h[:, offset:]
    elif offset < 0 and -offset < steps:
        out[:, -offset:] = h[:, : steps + offset]
    elif offset == 0:
        out[:] = h
    return out


def shift_backward(grad_out: np.ndarray, offset: int) -> np.ndarray:
    """The gradient of `shift_forward`, which is the opposite shift."""
    return shift_forward(grad_out, -offset)


# ---------------------------------------------------------------- softmax family


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log of the softmax over the last axis, computed without overflow."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis."""
    return np.exp(log_softmax(logits))


def softmax_cross_entropy(
    logits: np.ndarray, targets: np.ndarray, weights: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of integer `targets` under softmax(`logits`), and its gradient.

    `weights` scale each row's contribution (the mean divides by their sum), which lets
    masked-out rows take part with weight zero.
    """
    n = logits.shape[0]
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    total = max(float(w.sum()), 1e-12)
    log_prob = log_softmax(logits)
    loss = -float((w * log_prob[np.arange(n), targets]).sum()) / total
    grad = np.exp(log_prob)
    grad[np.arange(n), targets] -= 1.0
    grad *= (w / total)[:, None]
    return loss, grad


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, stable for large |x|."""
    out = np.empty_like(x, dtype=np.float64)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


# ------------------------------------------------------ similarity (StarSpace) loss


@dataclass
class SimilarityLossConfig:
    """The options of DIET's embedding loss, with Rasa's names and defaults."""

    loss_type: str = "cross_entropy"  # or "margin"
    maximum_positive_similarity: float = 0.8
    maximum_negative_similarity: float = -0.4
    use_maximum_negative_similarity: bool = True
    constrain_similarities: bool = False
    scale_loss: bool = False


@dataclass
class SimilarityLossResult:
    """Loss value, gradients w.r.t. both embedding sets, and the similarities themselves."""

    loss: float
    grad_inputs: np.ndarray
    grad_labels: np.ndarray
    similarities: np.ndarray = field(repr=False)


def similarity_loss(
    inputs: np.ndarray,
    labels: np.ndarray,
    positive: np.ndarray,
    candidates: np.ndarray | None,
    config: SimilarityLossConfig,
) -> SimilarityLossResult:
    """DIET's loss between input embeddings (n x e) and label embeddings (L x e).

    Similarity is the dot product (normalise the embeddings first for cosine). Each row
    is scored against `candidates[i]` (the positive label first, then sampled negatives)
    or, when `candidates` is None, against every label, which is cheap when labels are
    few and removes the sampling noise.

    - "cross_entropy": softmax over the candidate similarities, the positive is the target;
    - "margin": push the positive above `maximum_positive_similarity` and the negatives
      (the hardest one, or all with `use_maximum_negative_similarity` False) below
      `maximum_negative_similarity`.

    `constrain_similarities` adds a sigmoid cross-entropy that pulls each positive
    similarity towards 1 and each negative towards 0, which keeps the raw similarities
    in a bounded range as Rasa's option of that name does.
    """
    n = inputs.shape[0]
    positive = np.asarray(positive, dtype=np.int64)
    if candidates is None:
        cand = np.broadcast_to(np.arange(labels.shape[0]), (n, labels.shape[0]))
        is_pos = cand == positive[:, None]
    else:
        cand = np.asarray(candidates, dtype=np.int64)
        is_pos = np.zeros(cand.shape, dtype=bool)
        is_pos[:, 0] = True
    if candidates is None:
        sims = inputs @ labels.T
    else:
        cand_emb = labels[cand]  # n x c x e
        sims = np.einsum("ne,nce->nc", inputs, cand_emb)
    grad_sims = np.zeros_like(sims)
    loss = 0.0
    if config.loss_type == "cross_entropy":
        log_prob = log_softmax(sims)
        loss = -float(log_prob[is_pos].sum()) / n
        grad_sims = (np.exp(log_prob) - is_pos) / n
        if config.scale_loss:
            # down-weight examples that are already confidently right (Rasa's scale_loss)
            prob_pos = np.exp(log_prob[is_pos])
            scale = (1.0 - prob_pos) ** 4
            scale = scale / max(float(scale.mean()), 1e-12)
            loss = -float((scale * log_prob[is_pos]).sum()) / n
            grad_sims = grad_sims * scale[:, None]  # scale treated as a constant weight
    elif config.loss_type == "margin":
        pos_sim = sims[is_pos]
        pos_violation = config.maximum_positive_similarity - pos_sim
        active = pos_violation > 0
        loss += float(pos_violation[active].sum())
        grad_pos = np.where(active, -1.0, 0.0)
        neg_sims = np.where(is_pos, -np.inf, sims)
        if config.use_maximum_negative_similarity:
            hardest = np.argmax(neg_sims, axis=1)
            neg_violation = config.maximum_negative_similarity + neg_sims[np.arange(n), hardest]
            active_neg = neg_violation > 0
            loss += float(neg_violation[active_neg].sum())
            grad_sims[np.arange(n)[active_neg], hardest[active_neg]] += 1.0
        else:
            neg_violation = config.maximum_negative_similarity + neg_sims
            active_neg = neg_violation > 0
            loss += float(neg_violation[active_neg].sum())
            grad_sims += active_neg
        grad_sims[is_pos] += grad_pos
        loss /= n
        grad_sims /= n
    else:
        raise ValueError(f"unknown loss_type '{config.loss_type}'")
    if config.constrain_similarities:
        prob = sigmoid(sims)
        target = is_pos.astype(np.float64)
        count = sims.size
        log_p = np.log(np.clip(prob, 1e-12, 1.0))
        log_1p = np.log(np.clip(1.0 - prob, 1e-12, 1.0))
        loss += -float((target * log_p + (1 - target) * log_1p).sum()) / count
        grad_sims += (prob - target) / count
    if candidates is None:
        grad_inputs = grad_sims @ labels
    else:
        grad_inputs = np.einsum("nc,nce->ne", grad_sims, cand_emb)
    if candidates is None:
        grad_labels = grad_sims.T @ inputs
    else:
        grad_labels = np.zeros_like(labels)
        np.add.at(grad_labels, cand.reshape(-1), (grad_sims[:, :, None] * inputs[:, None, :]).reshape(-1, labels.shape[1]))
    return SimilarityLossResult(loss, grad_inputs, grad_labels, sims)


def sample_negatives(
    rng: np.random.Generator, positive: np.ndarray, n_labels: int, n_negatives: int
) -> np.ndarray:
    """Candidate label ids per row: the positive first, then distinct negatives.

    Negatives are drawn without replacement among the other labels; with fewer labels
    than requested every other label is used.
    """
    n = positive.size
    k = min(n_negatives, n_labels - 1)
    # random keys, with the positive pushed to the end so it is never drawn as a negative
    keys = rng.random((n, n_labels))
    keys[np.arange(n), positive] = 2.0
    negatives = np.argsort(keys, axis=1)[:, :k]
    return np.concatenate([positive[:, None], negatives], axis=1)


# ----------------------------------------------------------------------- optimiser


class Adam:
    """Adam (Kingma & Ba 2015) over a dict of named parameters.

    `step` accepts, per parameter, either a full gradient or a gradient for some rows
    only (`rows[name]`). Row updates are "lazy": the moment estimates of rows absent from
    the batch are left alone instead of decaying, which is what makes training on a
    vocabulary of tens of thousands of features cost per batch only what the batch uses.
    """

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-7,
    ) -> None:
        self.learning_rate = learning_rate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.t = 0
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}

    def step(
        self,
        params: dict[str, np.ndarray],
        grads: dict[str, np.ndarray],
        rows: dict[str, np.ndarray] | None = None,
        masks: dict[str, np.ndarray] | None = None,
        decay: dict[str, float] | None = None,
    ) -> None:
        """Update `params` in place; `masks[name]` zeroes updates of pruned weights and
        `decay[name]` adds that L2 term (times the weights) to the gradient."""
        self.advance()
        self.update(params, grads, rows, masks, decay)

    def advance(self) -> None:
        """Start the next step; `update` then applies its gradients, in one call or in
        several calls on disjoint sets of parameters (each may run on its own thread)."""
        self.t += 1

    def ensure_moments(self, params: dict[str, np.ndarray], names: Iterable[str]) -> None:
        """Create the (zero) moments of these parameters now, so that several threads can
        then `update` disjoint rows of one parameter without racing to create them."""
        for name in names:
            if name not in self.m:
                self.m[name] = np.zeros_like(params[name])
                self.v[name] = np.zeros_like(params[name])

    def update(
        self,
        params: dict[str, np.ndarray],
        grads: dict[str, np.ndarray],
        rows: dict[str, np.ndarray] | None = None,
        masks: dict[str, np.ndarray] | None = None,
        decay: dict[str, float] | None = None,
    ) -> None:
        """Apply the current step's gradients of some parameters (see `step`)."""
        lr = float(self.learning_rate * np.sqrt(1.0 - self.beta2**self.t) / (1.0 - self.beta1**self.t))
        rows = rows or {}
        masks = masks or {}
        decay = decay or {}
        self.ensure_moments(params, grads)
        for name, grad in grads.items():
            param = params[name]
            idx = rows.get(name)
            mask = masks.get(name)
            if idx is None:
                m, v, weights = self.m[name], self.v[name], param
            else:
                # work on gathered copies of the touched rows, then write them back
                # (np.take copies whole rows, about twice as fast as fancy indexing)
                m, v = np.take(self.m[name], idx, axis=0), np.take(self.v[name], idx, axis=0)
                weights = np.take(param, idx, axis=0)
            if name in decay:
                grad = grad + decay[name] * weights
            # in-place updates with one scratch buffer: the row-sparse layers touch
            # thousands of rows per step, so temporaries cost more than the arithmetic
            scratch = np.multiply(grad, 1.0 - self.beta1, dtype=m.dtype)
            m *= self.beta1
            m += scratch
            np.multiply(grad, grad, out=scratch, dtype=m.dtype)
            scratch *= 1.0 - self.beta2
            v *= self.beta2
            v += scratch
            np.sqrt(v, out=scratch)
            scratch += self.eps
            np.divide(m, scratch, out=scratch)
            scratch *= lr
            if mask is not None:
                scratch *= mask if idx is None else mask[idx]
            weights -= scratch
            if idx is not None:
                self.m[name][idx] = m
                self.v[name][idx] = v
                param[idx] = weights
