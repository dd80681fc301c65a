"""`trainkit data summary`: the counts Rasa's loaders give for a project or NLU file.

Domain counts are what the user wrote, with no defaults added, so they can be checked
against the files by eye.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainkit.data.importer import Project
from trainkit.data.nlu_reader import read_nlu_file
from trainkit.data.training_data import TrainingData


def nlu_counts(data: TrainingData) -> dict[str, int]:
    """Counts of the NLU part: examples, intents, entity types, synonyms, regexes, lookups."""
    return {
        "nlu_examples": len(data.nlu_examples),
        "nlu_intents": len(data.intents),
        "entity_types": len(data.entity_types),
        "synonyms": len(data.entity_synonyms),
        "regexes": len(data.regex_features),
        "lookup_tables": len(data.lookup_tables),
    }


def project_summary(project: Project) -> dict[str, Any]:
    """Counts for a whole project (NLU as the importer yields it, domain as written)."""
    counts: dict[str, Any] = nlu_counts(project.training_data())
    if project.paths.domain is not None:
        domain = project.domain
        counts.update(
            {
                "domain_intents": len(domain.intents),
                "domain_entities": len(domain.entities),
                "slots": len(domain.slots),
                "responses": len(domain.responses),
                "forms": len(domain.forms),
                "actions": len(domain.actions),
            }
        )
    counts["stories"] = project.stories.story_block_count()
    counts["rules"] = project.stories.rule_block_count()
    return dict(sorted(counts.items()))


def nlu_file_summary(path: str | Path) -> dict[str, Any]:
    """Counts for a lone NLU file."""
    return dict(sorted(nlu_counts(read_nlu_file(path)).items()))
