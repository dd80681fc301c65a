"""Linear-chain conditional random field in numpy.

Scores: a tag sequence y of length n under emissions E (n x K) has score
    start[y_0] + sum_t E[t, y_t] + sum_{t>0} trans[y_{t-1}, y_t] + end[y_{n-1}],
and probability exp(score) / Z, where Z sums over all K^n sequences (Lafferty et al.
2001). Forward and backward messages give log Z and the tag marginals, which are exactly
the gradients of log Z, so the gradient of the negative log-likelihood is "expected
counts minus observed counts".

Two layouts: token rows (`token_*` functions: the tokens of sequence 0, then of sequence
1, ..., with the lengths), which is how DIET holds them, and padded B x T grids (the
others), which convert to token rows. Inside, the rows are packed time-major (`Packing`):
sequences ranked by descending length, each time step one contiguous block of the
sequences still running, so a step touches no padding and needs no gather.

The likelihood and the marginals use scaled messages (Rabiner 1989): the forward and
backward recursions run on probabilities, each step renormalised to sum one, so a step is
one matrix product and no exponentials or logarithms of B x K values. Emission and
transition scores are exponentiated once, shifted by their maxima. Should a normaliser
come out too small to trust (scores hundreds apart, beyond the range of `exp`), the
log-space recursions compute the same quantities instead
(`log_space_nll_and_gradients`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from trainkit.ml.lanes import Lane, share


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


def log_space_nll_and_gradients(
    emissions: np.ndarray,
    tags: np.ndarray,
    lengths: np.ndarray,
    params: CRFParams,
    weights: np.ndarray | None = None,
) -> CRFGradients:
    """`nll_and_gradients` with log-space messages: slower (B x K exponentials and
    logarithms per step) but safe for any score range; the fallback of the scaled path
    and its reference in the tests.
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


# ------------------------------------------------------------ packed token layout


@dataclass
class Packing:
    """The real positions of a batch laid out time-major, as in a packed sequence.

    Sequences are ranked by descending length (stably); step t holds the positions of the
    `alive[t]` sequences still running, which are always the first ranks, so each step is
    one contiguous block of rows and the previous step's block starts with the same
    sequences. `rows[i]` is the packed row of token i in the caller's layout (tokens of
    sequence 0, then of sequence 1, ...).
    """

    lengths: np.ndarray  # B, caller order
    rank: np.ndarray  # B: each sequence's rank by descending length
    alive: np.ndarray  # T
    offsets: np.ndarray  # T + 1: first packed row of each step
    rows: np.ndarray  # N: packed row of each token
    last: np.ndarray  # R: packed row of the last position of each rank (non-empty sequences)

    @classmethod
    def from_lengths(cls, lengths: np.ndarray) -> Packing:
        """The layout of sequences of the given lengths (zero-length ones hold no rows)."""
        lengths = np.asarray(lengths, dtype=np.int64)
        order = np.argsort(-lengths, kind="stable")
        rank = np.empty(lengths.size, np.int64)
        rank[order] = np.arange(lengths.size)
        steps = int(lengths.max()) if lengths.size else 0
        alive = np.bincount(lengths, minlength=steps + 1)[::-1].cumsum()[::-1][1:]
        offsets = np.concatenate([[0], np.cumsum(alive)]).astype(np.int64)
        seq = np.repeat(np.arange(lengths.size), lengths)
        step = np.arange(seq.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        sorted_lengths = lengths[order]
        running = sorted_lengths[sorted_lengths > 0]
        last = offsets[running - 1] + np.arange(running.size)
        return cls(lengths, rank, alive, offsets, offsets[step] + rank[seq], last)

    @property
    def steps(self) -> int:
        """The longest sequence's length."""
        return int(self.alive.size)

    @property
    def size(self) -> int:
        """Number of real positions."""
        return int(self.offsets[-1])

    def packed_rank(self) -> np.ndarray:
        """The sequence rank of every packed row."""
        return np.arange(self.size) - np.repeat(self.offsets[:-1], self.alive)

    def token_steps(self) -> tuple[np.ndarray, np.ndarray]:
        """(sequence, position) of each token in the caller's layout."""
        seq = np.repeat(np.arange(self.lengths.size), self.lengths)
        step = np.arange(seq.size) - np.repeat(np.cumsum(self.lengths) - self.lengths, self.lengths)
        return seq, step


# a normaliser below this has lost precision (or is about to underflow): far above the
# smallest normal number of the precision the recursions run in
_TINY = {np.dtype(np.float64): 1e-280, np.dtype(np.float32): 1e-30}


@dataclass
class _Scaled:
    """Scaled forward-backward results on packed rows (see `_scaled_forward_backward`)."""

    alpha: np.ndarray  # P x K, forward messages rescaled to sum one
    beta: np.ndarray  # P x K, backward messages rescaled to sum one
    odds: np.ndarray  # P x K, exp(emission - its maximum over the tags)
    norm: np.ndarray  # P: the forward normaliser of each row
    overlap: np.ndarray  # P: sum over tags of alpha * beta
    marginals: np.ndarray  # P x K, tag marginals
    log_z: np.ndarray  # R: per non-empty sequence, by rank
    exp_trans: np.ndarray  # K x K: exp(transitions - their maximum), in double precision


def _scaled_forward_backward(packed: np.ndarray, packing: Packing, params: CRFParams) -> _Scaled | None:
    """Forward-backward with scaled messages (Rabiner 1989) over packed emissions.

    Each forward step is (alpha_{t-1} @ exp(trans)) * exp(emission), divided by its sum;
    the true message is that times the product of the sums so far, which only log Z
    needs, as a sum of logarithms. The backward messages are rescaled the same way, and
    the tag marginals are alpha * beta renormalised per position, so no scale is ever
    exponentiated. Returns None when a normaliser is too small to trust.
    """
    with np.errstate(divide="ignore", invalid="ignore", under="ignore"):
        return _scaled_recursions(packed, packing, params)


def _scaled_recursions(packed: np.ndarray, packing: Packing, params: CRFParams) -> _Scaled | None:
    # the recursions run in the emissions' precision
    n_rows, n_tags = packed.shape
    dtype = packed.dtype
    tiny = _TINY[dtype]
    alive, offsets = packing.alive, packing.offsets
    shift = packed.max(axis=1)
    odds = packed - shift[:, None]
    np.exp(odds, out=odds)
    exp_trans_double, peak = _exp_transitions(params)
    exp_trans = exp_trans_double.astype(dtype, copy=False)

    alpha = np.empty((n_rows, n_tags), dtype)
    norm = np.empty(n_rows, dtype)
    start_peak = float(params.start.max())
    first = int(alive[0])
    alpha[:first] = odds[:first] * np.exp(params.start - start_peak)
    for t in range(packing.steps):
        lo, m = int(offsets[t]), int(alive[t])
        block = alpha[lo : lo + m]
        if t:
            prev = int(offsets[t - 1])
            np.matmul(alpha[prev : prev + m], exp_trans, out=block)
            block *= odds[lo : lo + m]
        total = block.sum(axis=1)
        norm[lo : lo + m] = total
        block /= total[:, None]
    if not float(norm.min()) > tiny:
        return None

    end_peak = float(params.end.max())
    exp_end = np.exp(params.end - end_peak).astype(dtype)
    closing = alpha[packing.last] @ exp_end
    beta = np.empty((n_rows, n_tags), dtype)
    end_total = float(exp_end.sum())
    beta[packing.last] = exp_end / end_total
    back_norm = np.ones(n_rows, dtype)
    for t in range(packing.steps - 2, -1, -1):
        m = int(alive[t + 1])  # sequences for which t is not the last position
        lo, nxt = int(offsets[t]), int(offsets[t + 1])
        block = beta[lo : lo + m]
        np.matmul(odds[nxt : nxt + m] * beta[nxt : nxt + m], exp_trans.T, out=block)
        total = block.sum(axis=1)
        back_norm[lo : lo + m] = total
        block /= total[:, None]

    unary = alpha * beta
    overlap = unary.sum(axis=1)
    smallest = min(float(back_norm.min()), float(closing.min()), float(overlap.min()))
    if not smallest > tiny or not np.isfinite(overlap).all():
        return None
    unary /= overlap[:, None]
    # log of each row's scale factor; summed over a sequence's rows it is the log of the
    # true forward message's scale at its last position
    log_scale = np.log(norm).astype(np.float64) + shift + peak
    log_scale[:first] += start_peak - peak
    log_z = np.bincount(packing.packed_rank(), weights=log_scale, minlength=packing.last.size)
    log_z += np.log(closing) + end_peak
    return _Scaled(alpha, beta, odds, norm, overlap, unary, log_z, exp_trans_double)


def _grid(values: np.ndarray, packing: Packing) -> np.ndarray:
    """Token rows (N x K, caller layout) on a zero-padded B x T x K grid."""
    seq, step = packing.token_steps()
    grid = np.zeros((packing.lengths.size, max(packing.steps, 1), values.shape[1]))
    grid[seq, step] = values
    return grid


def _token_scores(emissions: np.ndarray, tags: np.ndarray, lengths: np.ndarray, params: CRFParams) -> np.ndarray:
    """Unnormalised score of the given tag sequences (B), on token rows."""
    n_seq = lengths.size
    seq = np.repeat(np.arange(n_seq), lengths)
    starts = np.cumsum(lengths) - lengths
    score = np.bincount(seq, weights=emissions[np.arange(tags.size), tags], minlength=n_seq)
    running = lengths > 0
    score[running] += params.start[tags[starts[running]]] + params.end[tags[starts[running] + lengths[running] - 1]]
    inner = np.ones(tags.size, dtype=bool)
    inner[starts[running]] = False  # a token with a predecessor in its sequence
    follow = np.flatnonzero(inner)
    score += np.bincount(seq[follow], weights=params.transitions[tags[follow - 1], tags[follow]], minlength=n_seq)
    return score


def token_nll_and_gradients(
    emissions: np.ndarray,
    tags: np.ndarray,
    lengths: np.ndarray,
    params: CRFParams,
    weights: np.ndarray | None = None,
    dtype: type[np.floating] = np.float64,
    lane: Lane | None = None,
    packing: Packing | None = None,
) -> CRFGradients:
    """`nll_and_gradients` on token rows: `emissions` (N x K) and `tags` (N) hold the
    tokens of sequence 0, then of sequence 1, ..., with `lengths` (B) summing to N; the
    emission gradient comes back in the same layout. No padded grid is ever built.

    `dtype` is the precision of the forward-backward recursions (the scores, log Z and
    the fallback to log space stay in double precision): a network trained in single
    precision gains twice the throughput of its products and exponentials, and the scaled
    messages (each renormalised to sum one) need no more range than float32 has.

    With a `lane`, the gold scores are offered to it while the recursions run here, and
    the unary marginals while the pairwise ones (the longer part) are computed here
    (`trainkit.ml.lanes`). `packing`, the layout of these `lengths`
    (`Packing.from_lengths`), may be made beforehand.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    tags = np.asarray(tags, dtype=np.int64)
    emissions = np.asarray(emissions, dtype=dtype)
    n_tags = emissions.shape[1]
    w = np.ones(lengths.size) if weights is None else np.asarray(weights, dtype=np.float64)
    w = np.where(lengths > 0, w, 0.0)
    if packing is None:
        packing = Packing.from_lengths(lengths)
    if packing.size == 0:
        zero = np.zeros(n_tags)
        return CRFGradients(0.0, np.zeros_like(emissions), np.zeros((n_tags, n_tags)), zero, zero.copy())
    packed = np.empty_like(emissions)
    packed[packing.rows] = emissions
    scaled, gold = share(partial(_scaled_forward_backward, packed, packing, params),
                         partial(_token_scores, emissions, tags, lengths, params), lane)
    if scaled is None:
        seq, step = packing.token_steps()
        grid_tags = np.zeros((lengths.size, packing.steps), np.int64)
        grid_tags[seq, step] = tags
        res = log_space_nll_and_gradients(_grid(emissions, packing), grid_tags, lengths, params, w)
        res.emissions = res.emissions[seq, step]
        return res
    order = np.argsort(packing.rank)  # sequence of each rank
    log_z = np.zeros(lengths.size)
    log_z[order[: packing.last.size]] = scaled.log_z
    loss = float((w * (log_z - gold)).sum())

    row_w = w[order][packing.packed_rank()]
    packed_tags = np.empty_like(tags)
    packed_tags[packing.rows] = tags
    # the pairwise part is the longer: it runs here, the unary part is offered
    d_trans, (d_packed, d_start, d_end) = share(partial(_pair_gradients, scaled, packing, packed_tags, row_w),
                                                partial(_unary_gradients, scaled, packing, packed_tags, row_w),
                                                lane)
    return CRFGradients(loss, d_packed[packing.rows], d_trans, d_start, d_end)


def _unary_gradients(scaled: _Scaled, packing: Packing, packed_tags: np.ndarray,
                     row_w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unary marginals (expected tag counts) minus observed counts, per packed row, and
    their sums over the first and the last positions (the start and end gradients)."""
    d_packed = scaled.marginals * row_w[:, None].astype(scaled.marginals.dtype)
    d_packed[np.arange(packing.size), packed_tags] -= row_w
    first = int(packing.alive[0])
    return d_packed, d_packed[:first].sum(axis=0), d_packed[packing.last].sum(axis=0)


def _pair_gradients(scaled: _Scaled, packing: Packing, packed_tags: np.ndarray, row_w: np.ndarray) -> np.ndarray:
    """Pairwise marginals minus observed transition counts (the transitions' gradient).

    All consecutive positions in one product: the rows of steps 1.. are packed rows
    first.., their predecessors the same ranks one step earlier; alpha_{t-1}(i)
    exp(trans(i, j)) odds_t(j) beta_t(j) sums to the forward normaliser at t times
    sum_k alpha_t beta_t, which scales each block to sum one.
    """
    n_tags = scaled.exp_trans.shape[0]
    first = int(packing.alive[0])
    d_trans = np.zeros((n_tags, n_tags))
    if packing.size > first:
        later = np.arange(first, packing.size)
        step_of = np.repeat(np.arange(packing.steps), packing.alive)[first:]
        prev = later - packing.alive[step_of - 1]
        left = scaled.alpha[prev]
        left *= (row_w[first:] / (scaled.norm[first:] * scaled.overlap[first:]))[:, None]
        right = scaled.odds[first:] * scaled.beta[first:]
        d_trans += (left.T @ right) * scaled.exp_trans
        d_trans -= np.bincount(
            packed_tags[prev] * n_tags + packed_tags[first:], weights=row_w[first:], minlength=n_tags * n_tags
        ).reshape(n_tags, n_tags)
    return d_trans


def token_marginals(emissions: np.ndarray, lengths: np.ndarray, params: CRFParams) -> np.ndarray:
    """Tag marginals (N x K) of token rows (layout of `token_nll_and_gradients`)."""
    emissions = np.asarray(emissions, dtype=np.float64)
    lengths = np.asarray(lengths, dtype=np.int64)
    packing = Packing.from_lengths(lengths)
    if packing.size == 0:
        return np.zeros_like(emissions)
    packed = np.empty_like(emissions)
    packed[packing.rows] = emissions
    scaled = _scaled_forward_backward(packed, packing, params)
    if scaled is not None:
        return scaled.marginals[packing.rows]
    grid = _grid(emissions, packing)
    alpha, log_z = forward_messages(grid, lengths, params)
    beta = backward_messages(grid, lengths, params)
    seq, step = packing.token_steps()
    return np.exp(alpha[seq, step] + beta[seq, step] - log_z[seq, None])


_VITERBI_CELLS = 1 << 16


def token_viterbi(
    emissions: np.ndarray, lengths: np.ndarray, params: CRFParams
) -> tuple[np.ndarray, np.ndarray]:
    """Best tag per token row (N) and best score per sequence (B, zero when empty).

    The max-product recursion runs on packed rows, so only running sequences are
    touched; candidates are laid out (to-tag x from-tag) so the maximum is taken along
    contiguous memory. Ties go to the lowest previous tag.
    """
    emissions = np.asarray(emissions, dtype=np.float64)
    lengths = np.asarray(lengths, dtype=np.int64)
    n_tags = emissions.shape[1]
    packing = Packing.from_lengths(lengths)
    if packing.size == 0:
        return np.zeros(0, np.int64), np.zeros(lengths.size)
    packed = np.empty_like(emissions)
    packed[packing.rows] = emissions
    alive, offsets = packing.alive, packing.offsets
    to_from = np.ascontiguousarray(params.transitions.T)
    score = params.start + packed[: int(alive[0])]
    back = np.zeros((packing.size, n_tags), dtype=np.int32)
    # rows per candidate block, so the m x K x K temporaries stay cache-sized
    chunk = max(1, _VITERBI_CELLS // max(n_tags * n_tags, 1))
    for t in range(1, packing.steps):
        lo, m = int(offsets[t]), int(alive[t])
        for a in range(0, m, chunk):
            b = min(m, a + chunk)
            cand = score[a:b, None, :] + to_from  # rows x to x from
            best_prev = np.argmax(cand, axis=2)
            score[a:b] = np.take_along_axis(cand, best_prev[:, :, None], axis=2)[:, :, 0]
            back[lo + a : lo + b] = best_prev
        score[:m] += packed[lo : lo + m]
    final = score + params.end
    current = np.argmax(final, axis=1)
    best = final[np.arange(current.size), current]
    path = np.empty(packing.size, np.int64)
    for t in range(packing.steps - 1, -1, -1):
        lo, m = int(offsets[t]), int(alive[t])
        if t + 1 < packing.steps:
            # sequences running past t step back from their tag at t + 1; those ending
            # at t keep their best last tag
            nxt, inner = int(offsets[t + 1]), int(alive[t + 1])
            current[:inner] = back[np.arange(nxt, nxt + inner), current[:inner]]
        path[lo : lo + m] = current[:m]
    scores = np.zeros(lengths.size)
    order = np.argsort(packing.rank)
    scores[order[: best.size]] = best
    return path[packing.rows], scores


# ------------------------------------------------------------- padded-grid interface


def _tokens(grid: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sequence, position) of the real positions of a padded grid, row-major."""
    return np.nonzero(_time_mask(lengths, grid.shape[1]))


def nll_and_gradients(
    emissions: np.ndarray,
    tags: np.ndarray,
    lengths: np.ndarray,
    params: CRFParams,
    weights: np.ndarray | None = None,
) -> CRFGradients:
    """Summed negative log-likelihood of `tags` and its gradients, on a padded batch
    (emissions B x T x K, tags B x T).

    `weights` (B) scale each sequence's term, e.g. 1/B for a mean. Sequences of length
    zero contribute nothing, and padding positions receive zero gradient.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    seq, step = _tokens(emissions, lengths)
    res = token_nll_and_gradients(emissions[seq, step], np.asarray(tags)[seq, step], lengths, params, weights)
    grid = np.zeros(emissions.shape)
    grid[seq, step] = res.emissions
    res.emissions = grid
    return res


def viterbi(
    emissions: np.ndarray, lengths: np.ndarray, params: CRFParams
) -> tuple[np.ndarray, np.ndarray]:
    """Best tag sequence per batch row (B x T, -1 on padding) and its score (B)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    seq, step = _tokens(emissions, lengths)
    tags, scores = token_viterbi(emissions[seq, step], lengths, params)
    path = np.full(emissions.shape[:2], -1, dtype=np.int64)
    path[seq, step] = tags
    return path, scores


def tag_confidences(
    emissions: np.ndarray, lengths: np.ndarray, params: CRFParams, path: np.ndarray
) -> np.ndarray:
    """Marginal probability of each decoded tag (B x T, 0 on padding).

    Rasa reports a per-token confidence for CRF tags; the marginal of the chosen tag is
    the probabilistic reading of it.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    seq, step = _tokens(emissions, lengths)
    conf = np.zeros(emissions.shape[:2])
    conf[seq, step] = token_confidences(emissions[seq, step], lengths, params, path[seq, step])
    return conf


def token_confidences(
    emissions: np.ndarray, lengths: np.ndarray, params: CRFParams, tags: np.ndarray
) -> np.ndarray:
    """Marginal probability of each token row's tag (N)."""
    marg = token_marginals(emissions, lengths, params)
    return marg[np.arange(marg.shape[0]), np.asarray(tags, dtype=np.int64)]
