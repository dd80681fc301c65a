"""Fixtures shared by the engine tests (components and data: fake_components.py)."""

from __future__ import annotations

import pytest
from fake_components import CONFIG, NLU


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project of CONFIG and NLU in the working directory, with a cache of its own."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRAINKIT_CACHE_DIR", raising=False)
    monkeypatch.delenv("TRAINKIT_CACHE_MAX_SIZE", raising=False)
    (tmp_path / "config.yml").write_text(CONFIG.format(epochs=1))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "nlu.yml").write_text(NLU)
    return tmp_path
