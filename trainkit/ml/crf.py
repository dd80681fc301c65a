"""Linear-chain conditional random field over padded batches, in numpy.

Scores: a tag sequence y of length n under emissions E (n x K) has score
    start[y_0] + sum_t E[t, y_t] + sum_{t>0} trans[y_{t-1}, y_t] + end[y_{n-1}],
and probability exp(score) / Z, where Z sums over all K^n sequences (Lafferty et al.
2001). The forward algorithm computes log Z in log space; forward and backward messages
together give the tag marginals, which are exactly the gradients of log Z, so the
gradient of the negative log-likelihood is "expected counts minus observed counts".

Batches are padded to the longest sequence and carry their lengths; every operation is
vectorised over the batch and loops only over time steps. Padding positions receive
zero gradient.
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


def forward_messages(
    emissions: np.ndarray, lengths: np.ndarray, params: CRFParams
) -> tuple[np.ndarray, np.ndarray]:
    """Log forward messages alpha (B x T x K) and log Z per sequence (B).

    Once a sequence has ended its alpha is carried forward unchanged, so the final row
    holds every sequence's last real message.
    """
    batch, steps, n_tags = emissions.shape
    exp_trans, peak = _exp_transitions(params)
    alpha = np.zeros((batch, steps, n_tags))
    alpha[:, 0] = params.start + emissions[:, 0]
    for t in range(1, steps):
        prev = alpha[:, t - 1]
        shift = prev.max(axis=1, keepdims=True)
        summed = np.exp(prev - shift) @ exp_trans
        step = np.log(np.maximum(summed, 1e-300)) + shift + peak + emissions[:, t]
        alive = (t < lengths)[:, None]
        alpha[:, t] = np.where(alive, step, prev)
    log_z = logsumexp(alpha[:, -1] + params.end, axis=1)
    return alpha, log_z


def backward_messages(
    emissions: np.ndarray, lengths: np.ndarray, params: CRFParams
) -> np.ndarray:
    """Log backward messages beta (B x T x K): the log-sum of scores of all completions."""
    batch, steps, n_tags = emissions.shape
    exp_trans, peak = _exp_transitions(params)
    beta = np.zeros((batch, steps, n_tags))
    for t in range(steps - 1, -1, -1):
        last = (t == lengths - 1)[:, None]
        if t + 1 < steps:
            nxt = emissions[:, t + 1] + beta[:, t + 1]
            shift = nxt.max(axis=1, keepdims=True)
            summed = np.exp(nxt - shift) @ exp_trans.T
            step = np.log(np.maximum(summed, 1e-300)) + shift + peak
        else:
            step = np.zeros((batch, n_tags))
        inside = (t < lengths - 1)[:, None]
        beta[:, t] = np.where(last, params.end[None], np.where(inside, step, 0.0))
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
    """
    batch, steps, n_tags = emissions.shape
    lengths = np.asarray(lengths, dtype=np.int64)
    w = np.ones(batch) if weights is None else np.asarray(weights, dtype=np.float64)
    w = np.where(lengths > 0, w, 0.0)
    lengths_c = np.maximum(lengths, 1)
    mask = _time_mask(lengths, steps)
    alpha, log_z = forward_messages(emissions, lengths_c, params)
    beta = backward_messages(emissions, lengths_c, params)
    gold = sequence_scores(emissions, tags, lengths_c, params)
    loss = float((w * (log_z - gold)).sum())

    # unary marginals: expected tag counts per position
    unary = np.exp(alpha + beta - log_z[:, None, None]) * mask[:, :, None]
    safe_tags = np.where(mask, tags, 0)
    observed = np.zeros_like(unary)
    np.put_along_axis(observed, safe_tags[:, :, None], 1.0, axis=2)
    observed *= mask[:, :, None]
    d_em = (unary - observed) * w[:, None, None]

    d_start = (w[:, None] * (unary[:, 0] - observed[:, 0])).sum(axis=0)
    rows = np.arange(batch)
    last = lengths_c - 1
    d_end = (w[:, None] * (unary[rows, last] - observed[rows, last])).sum(axis=0)

    # pairwise marginals for consecutive real positions, summed over the batch as one
    # product per step: exp(alpha_{t-1}(i) + trans(i, j) + em_t(j) + beta_t(j) - log Z)
    exp_trans, peak = _exp_transitions(params)
    expected = np.zeros((n_tags, n_tags))
    d_trans = np.zeros((n_tags, n_tags))
    for t in range(1, steps):
        alive = mask[:, t]
        if not alive.any():
            break
        left = alpha[alive, t - 1]
        right = emissions[alive, t] + beta[alive, t]
        left_shift = left.max(axis=1, keepdims=True)
        right_shift = right.max(axis=1, keepdims=True)
        scale = w[alive] * np.exp(left_shift[:, 0] + right_shift[:, 0] + peak - log_z[alive])
        expected += (np.exp(left - left_shift) * scale[:, None]).T @ np.exp(right - right_shift)
    d_trans += expected * exp_trans
    if steps > 1:
        # observed transition counts, all positions at once
        pair_mask = mask[:, 1:]
        pairs = safe_tags[:, :-1] * n_tags + safe_tags[:, 1:]
        weights_t = np.broadcast_to(w[:, None], pair_mask.shape)
        d_trans -= np.bincount(
            pairs[pair_mask], weights=weights_t[pair_mask], minlength=n_tags * n_tags
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
    batch, steps, _ = emissions.shape
    lengths_c = np.maximum(np.asarray(lengths, dtype=np.int64), 1)
    alpha, log_z = forward_messages(emissions, lengths_c, params)
    beta = backward_messages(emissions, lengths_c, params)
    marg = np.exp(alpha + beta - log_z[:, None, None])
    safe = np.maximum(path, 0)
    conf = np.take_along_axis(marg, safe[:, :, None], axis=2)[:, :, 0]
    return np.where(path >= 0, conf, 0.0)
