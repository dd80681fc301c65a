"""Pretrained resources (weights outside the code and config) are part of a fingerprint."""

from __future__ import annotations

from fake_components import train


def _config(weights):
    return f"""\
language: en
pipeline:
  - name: fake_components.FakeTokenizer
  - name: fake_components.WeightedFeaturizer
    weights: {weights}
  - name: fake_components.FakeClassifier
"""


def _stale(result):
    return {n: r["reason"] for n, r in result.dry_run_results.items() if r["status"] != "up to date"}


def test_replacing_the_weights_makes_exactly_their_readers_stale(project):
    weights = project / "weights.txt"
    weights.write_text("2")
    (project / "config.yml").write_text(_config(weights))
    train()
    assert _stale(train(dry_run=True)) == {}

    weights.write_text("3")
    stale = _stale(train(dry_run=True))
    featurizer = next(n for n in stale if "WeightedFeaturizer" in n)
    assert stale[featurizer] == "pretrained resources of WeightedFeaturizer changed"
    assert not any("FakeTokenizer" in n for n in stale)
    assert "package" in stale

    weights.write_text("2")  # back to the weights already built: all cached again
    assert _stale(train(dry_run=True)) == {}
