"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The shared datasets folder beside the repository checkout (or TRAINKIT_SHARED_DATASETS).

    Tests that need real-world data skip instead of failing where the data is not present.
    """
    override = os.environ.get("TRAINKIT_SHARED_DATASETS")
    if override:
        location = Path(override)
    else:
        location = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"
    if not location.is_dir():
        pytest.skip(f"shared datasets not found at {location}")
    return location.resolve()
