"""Fixtures building small story graphs and domains from inline YAML."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from trainkit.core.trackers import TrainingTracker, trackers_to_json
from trainkit.data.domain import Domain
from trainkit.data.domain_reader import parse_domain
from trainkit.data.stories import StoryGraph
from trainkit.data.story_reader import read_story_document
from trainkit.data.yaml_io import parse_yaml
from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.engine.providers import prune_domain_for_core

COFFEEBOT = Path(__file__).resolve().parents[2] / "examples" / "coffeebot"


@pytest.fixture
def make_graph() -> Callable[[str], StoryGraph]:
    """Stories/rules YAML (without the version line) -> StoryGraph."""

    def build(text: str) -> StoryGraph:
        document = 'version: "3.1"\n' + textwrap.dedent(text).lstrip("\n")
        return read_story_document(parse_yaml(document, "stories.yml"), "stories.yml")

    return build


@pytest.fixture
def make_domain() -> Callable[[str], Domain]:
    """Domain YAML (without the version line) -> the core domain policies see."""

    def build(text: str) -> Domain:
        document = 'version: "3.1"\n' + textwrap.dedent(text).lstrip("\n")
        domain = parse_domain(parse_yaml(document, "domain.yml"), "domain.yml")
        return Domain.from_dict(prune_domain_for_core(domain.as_dict()))

    return build


@pytest.fixture(scope="session")
def coffeebot_dir() -> Path:
    """The example project shipped with trainkit."""
    return COFFEEBOT


@pytest.fixture
def policy_inputs(tmp_path: Path) -> Callable[..., dict[str, Artifact]]:
    """Write trackers and a domain as the artifacts a policy's train node reads."""

    def build(trackers: list[TrainingTracker], domain: Domain) -> dict[str, Artifact]:
        trackers_out = ArtifactWriter(tmp_path / "inputs" / "trackers")
        trackers_out.json("trackers.json", trackers_to_json(trackers))
        domain_out = ArtifactWriter(tmp_path / "inputs" / "domain")
        domain_out.json("domain.json", domain.as_dict())
        return {"trackers": Artifact(trackers_out.path), "domain": Artifact(domain_out.path)}

    return build
