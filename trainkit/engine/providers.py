"""Data providers: the nodes that read the project files.

They write normalised JSON, never the raw YAML, so an edit that changes only whitespace,
comments or key order reruns the provider but yields a byte-identical artifact, and
nothing downstream retrains (early cutoff).
"""

from __future__ import annotations

from typing import Any

from trainkit.data.importer import Project
from trainkit.engine.artifact import ArtifactWriter
from trainkit.engine.component import PROVIDER, Component, Inputs, register


class ProviderComponent(Component):
    """A node function over the parsed project rather than over upstream artifacts."""

    roles = frozenset({PROVIDER})

    def provide(self, project: Project, out: ArtifactWriter) -> None:
        """Write this provider's part of the project into `out`."""
        raise NotImplementedError


@register
class NLUDataProvider(ProviderComponent):
    """NLU examples from NLU files, story user turns and retrieval responses."""

    name = "NLUDataProvider"
    version = "1"
    defaults = {"language": "en"}

    def provide(self, project: Project, out: ArtifactWriter) -> None:
        out.json("training_data.json", project.training_data().as_dict())


@register
class DomainProvider(ProviderComponent):
    """The whole domain: what the packaged model answers with."""

    name = "DomainProvider"
    version = "1"

    def provide(self, project: Project, out: ArtifactWriter) -> None:
        out.json("domain.json", project.domain.as_dict())


@register
class StoryGraphProvider(ProviderComponent):
    """Stories and rules, normalised."""

    name = "StoryGraphProvider"
    version = "2"

    def provide(self, project: Project, out: ArtifactWriter) -> None:
        out.json("story_graph.json", project.stories.as_dict())


def prune_domain_for_core(domain: dict[str, Any]) -> dict[str, Any]:
    """The domain as policies see it: response texts and session settings removed.

    Policies only need to know which responses exist, so editing a response's wording
    must not retrain them.
    """
    pruned = dict(domain)
    responses = pruned.get("responses") or {}
    pruned["responses"] = {name: [] for name in sorted(responses)}
    pruned.pop("session_config", None)
    return pruned


@register
class CoreDomainProvider(Component):
    """Derives the policy-relevant part of the domain."""

    name = "CoreDomainProvider"
    version = "1"
    roles = frozenset({PROVIDER})

    def derive(self, inputs: Inputs, out: ArtifactWriter) -> None:
        """Write the pruned domain."""
        domain = inputs["domain"]
        assert not isinstance(domain, list)
        out.json("domain.json", prune_domain_for_core(domain.json("domain.json")))
