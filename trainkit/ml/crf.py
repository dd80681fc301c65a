"""Linear-chain conditional random field over padded batches, in numpy.

Scores: a tag sequence y of length n under emissions E (n x K) has score
    start[y_0] + sum_t E[t, y_t] + sum_{t>0} trans[y_{t-1}, y_t] + end[y_{n-1}],
and probability exp(score) / Z, where Z sums over all K^n sequences (Lafferty et al.
2001). The forward algorithm computes log Z in log space; forward and backward messages
together give the tag marginals, which are exactly the gradients of log Z, so the
gradient of the negative log-likelihood is "expected counts minus observed counts".

Batches are padded to the longest sequence and carry their lengths; every operation is
vectorised over the batch and loops only over time steps. Inside, batches are sorted by
length so a time step only touches the sequences that are still running, and marginals
are computed on the real positions only. Padding positions receive zero gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    """log(sum(exp(x))) along `axis`, shifted by the maximum so it never overflows."""
    peak = np.max(x, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    return np.squeeze(peak, axis=axis) + np.log(np.sum(np.exp(x - peak), axis=axis))


@dataclass
class CRFParams:
    """Transition scores between consecutive tags plus start and end scores."""

    transitions: np.ndarray  # K x K, from-tag x to-tag
    start: np.ndarray  # K
    end: np.ndarray  # K

    @classmethod
    def zeros(cls, n_tags: int) -> CRFParams:
        """Uniform transitions: a deterministic starting point for training."""
        return cls(np.zeros((n_tags, n_tags)), np.zeros(n_tags), np.zeros(n_tags))


@dataclass
class CRFGradients:
    """Gradients of the (summed) negative log-likelihood."""

    loss: float
    emissions: np.ndarray
    transitions: np.ndarray
    start: np.ndarray
    end: np.ndarray


def _time_mask(lengths: np.ndarray, steps: int) -> np.ndarray:
    return np.arange(steps)[None, :] < lengths[:, None]


def _exp_transitions(params: CRFParams) -> tuple[np.ndarray, float]:
    """exp(transitions - max) and the max: log-sum-exp over the previous tag then becomes
    a matrix product, with only B x K exponentials per step instead of B x K x K."""
    peak = float(params.transitions.max()) if params.transitions.size else 0.0
    return np.exp(params.transitions - peak), peak


def _alive_counts(sorted_lengths: np.ndarray, steps: int) -> np.ndarray:
    """Per time step, how many sequences of a batch sorted by descending length are still
    running: they are always a prefix, so each step works on a view, not a gather."""
    return (sorted_lengths[None, :] > np.arange(steps)[:, None]).sum(axis=1)


def _forward_sorted(
    emissions: np.ndarray, lengths: np.ndarray, params: CRFParams
) -> tuple[np.ndarray, np.ndarray]:
    """Forward recursion over a batch sorted by descending length (all lengths >= 1).

    Only real positions are computed (a batch of short sentences padded to its longest
    one is mostly padding); positions past a sequence's end are left at zero.
    """
    batch, steps, n_tags = emissions.shape
    exp_trans, peak = _exp_transitions(params)
    alive = _alive_counts(lengths, steps)
    alpha = np.zeros((batch, steps, n_tags))
    alpha[:, 0] = params.start + emissions[:, 0]
    for t in range(1, steps):
        m = int(alive[t])
        if m == 0:
            break
        prev = alpha[:m, t - 1]
        shift = prev.max(axis=1, keepdims=True)
        summed = np.exp(prev - shift) @ exp_trans
        np.log(np.maximum(summed, 1e-300), out=summed)
        alpha[:m, t] = summed + (shift + peak) + emissions[:m, t]
    last = alpha[np.arange(batch), lengths - 1]
    return alpha, logsumexp(last + params.end, axis=1)


def _backward_sorted(emissions: np.ndarray, lengths: np.ndarray, params: CRFParams) -> np.ndarray:
    """Backward recursion over a batch sorted by descending length (all lengths >= 1);
    zero on padding."""
    batch, steps, n_tags = emissions.shape
    exp_trans, peak = _exp_transitions(params)
    alive = _alive_counts(lengths, steps)
    beta = np.zeros((batch, steps, n_tags))
    beta[np.arange(batch), lengths - 1] = params.end
    for t in range(steps - 2, -1, -1):
        m = int(alive[t + 1])  # sequences for which t is not the last position
        if m == 0:
            continue
        nxt = emissions[:m, t + 1] + beta[:m, t + 1]
        shift = nxt.max(axis=1, keepdims=True)
        summed = np.exp(nxt - shift) @ exp_trans.T
        np.log(np.maximum(summed, 1e-300), out=summed)
        beta[:m, t] = summed + (shift + peak)
    return beta


def _length_order(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The batch order by descending length (stable, so deterministic) and the sorted
    lengths, clamped to at least one step."""
    clamped = np.maximum(np.asarray(lengths, dtype=np.int64), 1)
    order = np.argsort(-clamped, kind="stable")
    return order, clamped[order]


def forward_messages(
    emissions: np.ndarray, lengths: np.ndarray, params: CRFParams
) -> tuple[np.ndarray, np.ndarray]:
    """Log forward messages alpha (B x T x K) and log Z per sequence (B).

    Once a sequence has ended its alpha is carried forward unchanged, so the final row
    holds every sequence's last real message.
    """
    batch, steps, _ = emissions.shape
    order, sorted_lengths = _length_order(lengths)
    alpha_s, log_z_s = _forward_sorted(emissions[order], sorted_lengths, params)
    # carry each sequence's last message over its padding
    last = np.minimum(np.arange(steps)[None, :], sorted_lengths[:, None] - 1)
    alpha_s = alpha_s[np.arange(batch)[:, None], last]
    alpha = np.empty_like(alpha_s)
    alpha[order] = alpha_s
    log_z = np.empty_like(log_z_s)
    log_z[order] = log_z_s
    return alpha, log_z


def backward_messages(
    emissions: np.ndarray, lengths: np.ndarray, params: CRFParams
) -> np.ndarray:
    """Log backward messages beta (B x T x K): the log-sum of scores of all completions."""
    order, sorted_lengths = _length_order(lengths)
    beta_s = _backward_sorted(emissions[order], sorted_lengths, params)
    beta = np.empty_like(beta_s)
    beta[order] = beta_s
    return beta


def sequence_scores(
    emissions: np.ndarray, tags: np.ndarray, lengths: np.ndarray, params: CRFParams
) -> np.ndarray:
    """Unnormalised score of the given tag sequences (B)."""
    batch, steps, _ = emissions.shape
    mask = _time_mask(lengths, steps)
    safe_tags = np.where(mask, tags, 0)
    rows = np.arange(batch)
    score = params.start[safe_tags[:, 0]].copy()
    score += (np.take_along_axis(emissions, safe_tags[:, :, None], axis=2)[:, :, 0] * mask).sum(axis=1)
    if steps > 1:
        pair = params.transitions[safe_tags[:, :-1], safe_tags[:, 1:]]
        score += (pair * mask[:, 1:]).sum(axis=1)
    score += params.end[safe_tags[rows, np.maximum(lengths - 1, 0)]]
    return score


def nll_and_gradients(
    emissions: np.ndarray,
    tags: np.ndarray,
    lengths: np.ndarray,
    params: CRFParams,
    weights: np.ndarray | None = None,
) -> CRFGradients:
    """Summed negative log-likelihood of `tags` and its gradients.

    `weights` (B) scale each sequence's term, e.g. 1/B for a mean. Sequences of length
    zero contribute nothing.

    The batch is sorted by length so the recursions only visit real positions, and the
    marginals are computed on the flat list of real positions: with sentences of ~10
    tokens padded to the longest in the batch, most of a padded grid is padding.
    """
    batch, steps, n_tags = emissions.shape
    lengths = np.asarray(lengths, dtype=np.int64)
    w = np.ones(batch) if weights is None else np.asarray(weights, dtype=np.float64)
    w = np.where(lengths > 0, w, 0.0)
    order, len_s = _length_order(lengths)
    em_s = emissions[order]
    tags_s = np.asarray(tags)[order]
    w_s = w[order]
    alpha, log_z = _forward_sorted(em_s, len_s, params)
    beta = _backward_sorted(em_s, len_s, params)
    gold = sequence_scores(em_s, tags_s, len_s, params)
    loss = float((w_s * (log_z - gold)).sum())

    # unary marginals (expected tag counts) minus observed counts, real positions only
    pos_b, pos_t = np.nonzero(_time_mask(len_s, steps))
    gold_tags = tags_s[pos_b, pos_t]
    pos_w = w_s[pos_b]
    d_flat = np.exp(alpha[pos_b, pos_t] + beta[pos_b, pos_t] - log_z[pos_b, None])
    d_flat *= pos_w[:, None]
    d_flat[np.arange(pos_b.size), gold_tags] -= pos_w
    d_em_s = np.zeros_like(em_s, dtype=np.float64)
    d_em_s[pos_b, pos_t] = d_flat
    d_em = np.empty_like(d_em_s)
    d_em[order] = d_em_s

    d_start = d_flat[pos_t == 0].sum(axis=0)
    d_end = d_flat[pos_t == len_s[pos_b] - 1].sum(axis=0)

    # pairwise marginals of all consecutive real positions in one product:
    # exp(alpha_{t-1}(i) + trans(i, j) + em_t(j) + beta_t(j) - log Z)
    exp_trans, peak = _exp_transitions(params)
    d_trans = np.zeros((n_tags, n_tags))
    pair = pos_t > 0
    if pair.any():
        pb, pt = pos_b[pair], pos_t[pair]
        left = alpha[pb, pt - 1]
        right = em_s[pb, pt] + beta[pb, pt]
        left_shift = left.max(axis=1, keepdims=True)
        right_shift = right.max(axis=1, keepdims=True)
        scale = w_s[pb] * np.exp(left_shift[:, 0] + right_shift[:, 0] + peak - log_z[pb])
        left = np.exp(left - left_shift)
        left *= scale[:, None]
        expected = left.T @ np.exp(right - right_shift)
        d_trans += expected * exp_trans
        # observed transition counts
        prev_tags = tags_s[pb, pt - 1]
        d_trans -= np.bincount(
            prev_tags * n_tags + tags_s[pb, pt], weights=w_s[pb], minlength=n_tags * n_tags
        ).reshape(n_tags, n_tags)
    return CRFGradients(loss, d_em, d_trans, d_start, d_end)


def viterbi(
    emissions: np.ndarray, lengths: np.ndarray, params: CRFParams
) -> tuple[np.ndarray, np.ndarray]:
    """Best tag sequence per batch row (B x T, -1 on padding) and its score (B)."""
    batch, steps, n_tags = emissions.shape
    lengths = np.asarray(lengths, dtype=np.int64)
    score = params.start + emissions[:, 0]
    back = np.zeros((batch, steps, n_tags), dtype=np.int64)
    scores = np.zeros((batch, steps, n_tags))
    scores[:, 0] = score
    for t in range(1, steps):
        cand = score[:, :, None] + params.transitions[None]
        best_prev = np.argmax(cand, axis=1)
        new = np.take_along_axis(cand, best_prev[:, None, :], axis=1)[:, 0] + emissions[:, t]
        alive = (t < lengths)[:, None]
        score = np.where(alive, new, score)
        back[:, t] = best_prev
        scores[:, t] = score
    final = score + params.end
    best_last = np.argmax(final, axis=1)
    best_score = final[np.arange(batch), best_last]
    path = np.full((batch, steps), -1, dtype=np.int64)
    current = best_last.copy()
    for t in range(steps - 1, -1, -1):
        at_end = t == lengths - 1
        inside = t < lengths - 1
        if t + 1 < steps:
            prev = back[np.arange(batch), t + 1, np.maximum(path[:, t + 1], 0)]
            current = np.where(inside, prev, current)
        current = np.where(at_end, best_last, current)
        path[:, t] = np.where(t < lengths, current, -1)
    return path, np.where(lengths > 0, best_score, 0.0)


def tag_confidences(
    emissions: np.ndarray, lengths: np.ndarray, params: CRFParams, path: np.ndarray
) -> np.ndarray:
    """Marginal probability of each decoded tag (B x T, 0 on padding).

    Rasa reports a per-token confidence for CRF tags; the marginal of the chosen tag is
    the probabilistic reading of it.
    """
    alpha, log_z = forward_messages(emissions, lengths, params)
    beta = backward_messages(emissions, lengths, params)
    marg = np.exp(alpha + beta - log_z[:, None, None])
    safe = np.maximum(path, 0)
    conf = np.take_along_axis(marg, safe[:, :, None], axis=2)[:, :, 0]
    return np.where(path >= 0, conf, 0.0)
