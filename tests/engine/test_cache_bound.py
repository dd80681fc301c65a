"""A cache bound smaller than one build's outputs never breaks a build: it applies
between builds, least recently used first."""

from __future__ import annotations

from fake_components import train

from trainkit.engine.cache import Cache


def test_a_bound_smaller_than_one_build_still_builds_and_rebuilds(project, monkeypatch):
    monkeypatch.setenv("TRAINKIT_CACHE_MAX_SIZE", "0.25K")
    first = train()
    assert first.code == 0 and first.model
    second = train()
    assert second.code == 0 and second.model == first.model
    assert len(list((project / "models").glob("*.tar.gz"))) == 1
    cache = Cache.for_project(project)
    assert cache.stats()["bytes"] <= 256


def test_a_bound_that_fits_a_build_keeps_it_whole(project, monkeypatch):
    monkeypatch.setenv("TRAINKIT_CACHE_MAX_SIZE", "10M")
    train()
    result = train(dry_run=True)
    assert all(r["status"] == "up to date" for r in result.dry_run_results.values())
