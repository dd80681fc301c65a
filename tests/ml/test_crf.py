"""The CRF's likelihood, gradients and decoding agree with brute force on tiny cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from trainkit.ml import crf


def random_problem(seed, batch=3, steps=4, tags=3):
    rng = np.random.default_rng(seed)
    emissions = rng.normal(size=(batch, steps, tags))
    params = crf.CRFParams(rng.normal(size=(tags, tags)), rng.normal(size=tags), rng.normal(size=tags))
    lengths = np.array([steps, 1, max(steps - 2, 1)])[:batch]
    gold = rng.integers(0, tags, size=(batch, steps))
    return emissions, params, lengths, gold


def brute_force(emissions, params, length):
    tags = emissions.shape[-1]
    best, best_score, scores = None, -np.inf, []
    for seq in itertools.product(range(tags), repeat=length):
        s = params.start[seq[0]] + params.end[seq[-1]]
        s += sum(emissions[t, seq[t]] for t in range(length))
        s += sum(params.transitions[seq[t - 1], seq[t]] for t in range(1, length))
        scores.append(s)
        if s > best_score:
            best, best_score = seq, s
    return np.log(np.sum(np.exp(scores))), best, best_score


def test_log_partition_and_viterbi_match_enumeration():
    emissions, params, lengths, _ = random_problem(1)
    _, log_z = crf.forward_messages(emissions, lengths, params)
    path, score = crf.viterbi(emissions, lengths, params)
    for b, n in enumerate(lengths):
        z, best, best_score = brute_force(emissions[b], params, int(n))
        assert log_z[b] == pytest.approx(z)
        assert tuple(path[b, :n]) == best
        assert (path[b, n:] == -1).all()
        assert score[b] == pytest.approx(best_score)


def test_nll_gradients_match_finite_differences():
    emissions, params, lengths, gold = random_problem(2)
    weights = np.array([1.0, 0.5, 2.0])
    result = crf.nll_and_gradients(emissions, gold, lengths, params, weights)

    def loss():
        return crf.nll_and_gradients(emissions, gold, lengths, params, weights).loss

    def numeric(x, eps=1e-6):
        out = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            old = x[idx]
            x[idx] = old + eps
            up = loss()
            x[idx] = old - eps
            down = loss()
            x[idx] = old
            out[idx] = (up - down) / (2 * eps)
        return out

    np.testing.assert_allclose(result.emissions, numeric(emissions), atol=1e-6)
    np.testing.assert_allclose(result.transitions, numeric(params.transitions), atol=1e-6)
    np.testing.assert_allclose(result.start, numeric(params.start), atol=1e-6)
    np.testing.assert_allclose(result.end, numeric(params.end), atol=1e-6)
    # padding positions get no gradient
    assert np.abs(result.emissions[1, 1:]).max() == 0.0


def test_nll_matches_brute_force_probability():
    emissions, params, lengths, gold = random_problem(3)
    result = crf.nll_and_gradients(emissions[:1], gold[:1], lengths[:1], params)
    z, _, _ = brute_force(emissions[0], params, int(lengths[0]))
    seq = gold[0]
    s = params.start[seq[0]] + params.end[seq[-1]] + emissions[0, np.arange(4), seq].sum()
    s += sum(params.transitions[seq[t - 1], seq[t]] for t in range(1, 4))
    assert result.loss == pytest.approx(z - s)


def test_marginal_confidences_are_probabilities():
    emissions, params, lengths, _ = random_problem(4)
    path, _ = crf.viterbi(emissions, lengths, params)
    conf = crf.tag_confidences(emissions, lengths, params, path)
    assert ((conf > 0) == (path >= 0)).all()
    assert conf.max() <= 1.0 + 1e-12


def test_nll_is_invariant_to_batch_order_and_ignores_empty_sequences():
    # the batch is sorted by length internally; results must come back in caller order
    rng = np.random.default_rng(7)
    emissions = rng.normal(size=(5, 6, 4))
    params = crf.CRFParams(rng.normal(size=(4, 4)), rng.normal(size=4), rng.normal(size=4))
    lengths = np.array([2, 6, 0, 1, 4])
    gold = rng.integers(0, 4, size=(5, 6))
    whole = crf.nll_and_gradients(emissions, gold, lengths, params)
    perm = np.array([3, 0, 4, 2, 1])
    shuffled = crf.nll_and_gradients(emissions[perm], gold[perm], lengths[perm], params)
    assert shuffled.loss == pytest.approx(whole.loss)
    np.testing.assert_allclose(shuffled.emissions, whole.emissions[perm], atol=1e-12)
    np.testing.assert_allclose(shuffled.transitions, whole.transitions, atol=1e-12)
    assert not whole.emissions[2].any()
    for b, n in enumerate(lengths):
        assert not whole.emissions[b, n:].any()
        if n:
            z, _, _ = brute_force(emissions[b], params, int(n))
            alone = crf.nll_and_gradients(emissions[b : b + 1], gold[b : b + 1], lengths[b : b + 1], params)
            assert alone.loss == pytest.approx(z - crf.sequence_scores(emissions[b : b + 1], gold[b : b + 1], lengths[b : b + 1], params)[0])


# ------------------------------------------------- the scaled recursion and its fallback


def larger_problem(seed, batch=9, steps=13, tags=23, spread=3.0):
    rng = np.random.default_rng(seed)
    emissions = spread * rng.normal(size=(batch, steps, tags))
    params = crf.CRFParams(spread * rng.normal(size=(tags, tags)), rng.normal(size=tags), rng.normal(size=tags))
    lengths = rng.integers(0, steps + 1, size=batch)
    lengths[0] = steps
    gold = rng.integers(0, tags, size=(batch, steps))
    weights = rng.uniform(0.1, 2.0, size=batch)
    return emissions, params, lengths, gold, weights


def assert_same_result(fast, reference):
    assert fast.loss == pytest.approx(reference.loss, rel=1e-10)
    np.testing.assert_allclose(fast.emissions, reference.emissions, atol=1e-10)
    np.testing.assert_allclose(fast.transitions, reference.transitions, atol=1e-9)
    np.testing.assert_allclose(fast.start, reference.start, atol=1e-10)
    np.testing.assert_allclose(fast.end, reference.end, atol=1e-10)


@pytest.mark.parametrize("seed", range(5))
def test_scaled_recursion_equals_the_log_space_computation(seed):
    emissions, params, lengths, gold, weights = larger_problem(seed)
    fast = crf.nll_and_gradients(emissions, gold, lengths, params, weights)
    reference = crf.log_space_nll_and_gradients(emissions, gold, lengths, params, weights)
    assert_same_result(fast, reference)


def test_tag_confidences_are_the_marginals_of_the_decoded_tags():
    emissions, params, lengths, _, _ = larger_problem(6, tags=7)
    path, _ = crf.viterbi(emissions, lengths, params)
    conf = crf.tag_confidences(emissions, lengths, params, path)
    alpha, log_z = crf.forward_messages(emissions, lengths, params)
    beta = crf.backward_messages(emissions, lengths, params)
    marginals = np.exp(alpha + beta - log_z[:, None, None])
    for b, n in enumerate(lengths):
        for t in range(int(n)):
            assert conf[b, t] == pytest.approx(marginals[b, t, path[b, t]], rel=1e-9)
        assert not conf[b, int(n):].any()


def reference_viterbi(emissions, params, n):
    """Per-sequence max-product recursion, no batching."""
    score = params.start + emissions[0]
    back = []
    for t in range(1, n):
        cand = score[:, None] + params.transitions
        back.append(cand.argmax(axis=0))
        score = cand.max(axis=0) + emissions[t]
    score = score + params.end
    best = [int(score.argmax())]
    for pointers in reversed(back):
        best.append(int(pointers[best[-1]]))
    return best[::-1], float(score.max())


@pytest.mark.parametrize("seed", range(3))
def test_batched_viterbi_equals_per_sequence_decoding(seed):
    emissions, params, lengths, _, _ = larger_problem(seed + 20)
    path, score = crf.viterbi(emissions, lengths, params)
    for b, n in enumerate(lengths):
        n = int(n)
        if n == 0:
            assert (path[b] == -1).all() and score[b] == 0.0
            continue
        best, best_score = reference_viterbi(emissions[b], params, n)
        assert path[b, :n].tolist() == best
        assert (path[b, n:] == -1).all()
        assert score[b] == pytest.approx(best_score)


def on_tokens(grid, lengths):
    """The real positions of a padded grid as token rows (sequence after sequence)."""
    seq, step = np.nonzero(np.arange(grid.shape[1])[None, :] < lengths[:, None])
    return grid[seq, step]


def scaled_path_applies(emissions, lengths, params):
    packing = crf.Packing.from_lengths(lengths)
    packed = np.empty((packing.size, emissions.shape[2]))
    packed[packing.rows] = on_tokens(emissions, lengths)
    return crf._scaled_forward_backward(packed, packing, params) is not None


def test_scores_beyond_the_range_of_exp_fall_back_to_log_space():
    # emission gaps of thousands underflow exp(); the result must still be exact
    emissions, params, lengths, gold, weights = larger_problem(11, spread=400.0)
    params.transitions[0] = -5000.0
    assert not scaled_path_applies(emissions, lengths, params)
    fast = crf.nll_and_gradients(emissions, gold, lengths, params, weights)
    reference = crf.log_space_nll_and_gradients(emissions, gold, lengths, params, weights)
    assert np.isfinite(fast.loss) and np.isfinite(fast.emissions).all()
    assert_same_result(fast, reference)
    marginals = crf.token_marginals(on_tokens(emissions, lengths), lengths, params)
    alpha, log_z = crf.forward_messages(emissions, lengths, params)
    beta = crf.backward_messages(emissions, lengths, params)
    log_space = np.exp(alpha + beta - log_z[:, None, None])
    np.testing.assert_allclose(marginals, on_tokens(log_space, lengths))


def test_ordinary_scores_take_the_scaled_path():
    emissions, params, lengths, _, _ = larger_problem(12, spread=20.0)
    assert scaled_path_applies(emissions, lengths, params)


def test_packing_puts_each_step_in_one_block_of_running_sequences():
    lengths = np.array([2, 0, 3, 1, 3])
    packing = crf.Packing.from_lengths(lengths)
    assert packing.alive.tolist() == [4, 3, 2]
    assert packing.offsets.tolist() == [0, 4, 7, 9]
    # ranks by descending length, stable: sequences 2, 4, 0, 3 (1 is empty)
    assert packing.rank[[2, 4, 0, 3]].tolist() == [0, 1, 2, 3]
    # tokens: seq 0 (t0, t1), seq 2 (t0..t2), seq 3 (t0), seq 4 (t0..t2)
    assert packing.rows.tolist() == [2, 6, 0, 4, 7, 3, 1, 5, 8]
    assert packing.last.tolist() == [7, 8, 6, 3]


def test_token_layout_equals_the_padded_interface():
    emissions, params, lengths, gold, weights = larger_problem(13)
    grid = crf.nll_and_gradients(emissions, gold, lengths, params, weights)
    flat = crf.token_nll_and_gradients(on_tokens(emissions, lengths), on_tokens(gold[:, :, None], lengths)[:, 0],
                                       lengths, params, weights)
    assert flat.loss == pytest.approx(grid.loss)
    np.testing.assert_allclose(flat.emissions, on_tokens(grid.emissions, lengths))
    np.testing.assert_allclose(flat.transitions, grid.transitions)
    path, score = crf.viterbi(emissions, lengths, params)
    tags, flat_score = crf.token_viterbi(on_tokens(emissions, lengths), lengths, params)
    assert tags.tolist() == on_tokens(path[:, :, None], lengths)[:, 0].tolist()
    np.testing.assert_allclose(flat_score, score)


def test_scaled_marginals_match_enumeration():
    emissions, params, lengths, _ = random_problem(5)
    marginals = crf.token_marginals(on_tokens(emissions, lengths), lengths, params)
    row = 0
    for b, n in enumerate(lengths):
        n = int(n)
        weights = {}
        for seq in itertools.product(range(3), repeat=n):
            s = params.start[seq[0]] + params.end[seq[-1]] + sum(emissions[b, t, seq[t]] for t in range(n))
            s += sum(params.transitions[seq[t - 1], seq[t]] for t in range(1, n))
            weights[seq] = np.exp(s)
        total = sum(weights.values())
        for t in range(n):
            expected = [sum(w for seq, w in weights.items() if seq[t] == k) / total for k in range(3)]
            np.testing.assert_allclose(marginals[row], expected, atol=1e-12)
            row += 1


def _single_precision(emissions, lengths, gold, params, weights):
    return crf.token_nll_and_gradients(on_tokens(emissions, lengths).astype(np.float32), on_tokens(gold, lengths),
                                       lengths, params, weights, dtype=np.float32)


@pytest.mark.parametrize("seed", range(3))
def test_single_precision_recursions_agree_with_double(seed):
    emissions, params, lengths, gold, weights = larger_problem(seed, spread=6.0)
    reference = crf.log_space_nll_and_gradients(emissions, gold, lengths, params, weights)
    single = _single_precision(emissions, lengths, gold, params, weights)
    assert single.emissions.dtype == np.float32
    assert single.loss == pytest.approx(reference.loss, rel=1e-5)
    scale = np.abs(reference.emissions).max()
    np.testing.assert_allclose(single.emissions, on_tokens(reference.emissions, lengths), atol=1e-5 * scale)
    np.testing.assert_allclose(single.transitions, reference.transitions, atol=1e-5 * np.abs(reference.transitions).max())
    np.testing.assert_allclose(single.start, reference.start, atol=1e-5)
    np.testing.assert_allclose(single.end, reference.end, atol=1e-5)


def test_single_precision_falls_back_to_log_space_sooner():
    # gaps of a few hundred fit double precision's exp() but not single's: the float32
    # recursions hand over to the log-space computation, which stays exact
    emissions, params, lengths, gold, weights = larger_problem(13, spread=40.0)
    params.transitions[0] = -120.0
    packing = crf.Packing.from_lengths(lengths)
    packed = np.empty((packing.size, emissions.shape[2]), np.float32)
    packed[packing.rows] = on_tokens(emissions, lengths)
    assert scaled_path_applies(emissions, lengths, params)
    assert crf._scaled_forward_backward(packed, packing, params) is None
    reference = crf.log_space_nll_and_gradients(emissions, gold, lengths, params, weights)
    single = _single_precision(emissions, lengths, gold, params, weights)
    assert single.loss == pytest.approx(reference.loss, rel=1e-6)
    np.testing.assert_allclose(single.emissions, on_tokens(reference.emissions, lengths), atol=1e-6)


def test_gradients_shared_with_a_lane_are_the_same_bit_for_bit():
    from trainkit.ml.lanes import Lane

    emissions, params, lengths, gold, weights = larger_problem(21)
    tokens, tags = on_tokens(emissions, lengths), on_tokens(gold[:, :, None], lengths)[:, 0]
    alone = crf.token_nll_and_gradients(tokens, tags, lengths, params, weights, dtype=np.float32)
    with Lane() as lane:
        shared = crf.token_nll_and_gradients(tokens, tags, lengths, params, weights, dtype=np.float32, lane=lane)
    assert shared.loss == alone.loss
    for name in ("emissions", "transitions", "start", "end"):
        np.testing.assert_array_equal(getattr(shared, name), getattr(alone, name), err_msg=name)
