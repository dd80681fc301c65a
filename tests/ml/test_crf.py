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
