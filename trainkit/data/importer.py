"""Resolve --config, --domain and --data into Domain, TrainingData and StoryGraph.

Files are discovered the way Rasa does it (directories recursively, sorted, `.yml` and
`.yaml`), and each file is classified by its top-level keys. The importer adds what Rasa
adds: user turns from stories become NLU examples, and retrieval-intent responses from the
domain join the NLU data.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

from trainkit.data.config import TrainingConfig, load_config
from trainkit.data.domain import IS_RETRIEVAL_INTENT, Domain
from trainkit.data.domain_reader import load_domain
from trainkit.data.events import UserUtteranceOr, UserUttered
from trainkit.data.nlu_reader import read_nlu_document
from trainkit.data.paths import ProjectPaths
from trainkit.data.stories import StoryGraph
from trainkit.data.story_reader import read_story_document
from trainkit.data.training_data import Entity, Message, TrainingData
from trainkit.data.yaml_io import load_yaml
from trainkit.errors import DataError, DataErrors, Problem, problems_of, raise_problems


@dataclass
class Project:
    """An assistant's training inputs, parsed."""

    paths: ProjectPaths
    config: TrainingConfig
    domain: Domain
    nlu: TrainingData  # what the NLU files say
    stories: StoryGraph
    test_stories: StoryGraph
    ignored_files: list[Path] = field(default_factory=list)

    def training_data(self) -> TrainingData:
        """NLU data as the components see it: files, plus story turns and retrieval responses."""
        extra = [_message_from_user_turn(e) for e in story_user_turns(self.stories)]
        responses = {
            name: variations for name, variations in self.domain.responses.items() if "/" in name
        }
        added = TrainingData(training_examples=[m for m in extra if m is not None], responses=responses)
        return self.nlu.merge(added)


def story_user_turns(stories: StoryGraph) -> list[UserUttered]:
    """Every user turn written in stories and rules, `or` alternatives included."""
    turns: list[UserUttered] = []
    for step in stories.story_steps:
        for event in step.events:
            if isinstance(event, UserUttered):
                turns.append(event)
            elif isinstance(event, UserUtteranceOr):
                turns.extend(event.alternatives)
    return turns


def _message_from_user_turn(event: UserUttered) -> Message | None:
    if event.text is None:
        return None
    entities = tuple(
        Entity(start=e.start, end=e.end, value=e.value, entity=e.entity, role=e.role, group=e.group)
        for e in event.entities
        if getattr(e, "start", None) is not None
    )
    return Message.build(text=event.text, intent=event.intent, entities=entities)


def load_project(
    config: str | Path | None = None,
    domain: str | Path | None = None,
    data: str | Path | list[str | Path] | None = None,
) -> Project:
    """Read every file of an assistant into one Project."""
    paths = ProjectPaths.create(config, domain, data)
    return load_project_paths(paths)


def load_project_paths(paths: ProjectPaths) -> Project:
    """Read every file named by `paths`; every broken file, block and entry is reported."""
    training_config = load_config(paths.config)
    problems: list[Problem] = []
    domain_obj = Domain()
    for file in paths.domain_files():
        try:
            domain_obj = domain_obj.merge(load_domain(file))
        except (DataError, DataErrors) as exc:
            problems.extend(problems_of(exc))
    nlu = TrainingData()
    stories = StoryGraph([])
    test_stories = StoryGraph([])
    ignored: list[Path] = []
    for file in paths.data_files():
        try:
            nlu, stories, test_stories = _read_data_file(file, nlu, stories, test_stories, ignored)
        except (DataError, DataErrors) as exc:  # keep reading: every broken file is reported
            problems.extend(problems_of(exc))
    raise_problems(problems)
    domain_obj = with_story_bot_texts(with_retrieval_intents(domain_obj, nlu), stories)
    return Project(paths, training_config, domain_obj, nlu, stories, test_stories, ignored)


def _read_data_file(
    file: Path, nlu: TrainingData, stories: StoryGraph, test_stories: StoryGraph, ignored: list[Path]
) -> tuple[TrainingData, StoryGraph, StoryGraph]:
    """Add one data file's NLU data, stories and test stories to what was read so far.

    Both parts of a file are read even when one is broken, so every problem is reported.
    """
    document = load_yaml(file)
    if not isinstance(document, dict):
        if document is not None:
            raise DataError("a data file must be a mapping with 'nlu', 'stories' or 'rules'", file, 1)
        ignored.append(file)
        return nlu, stories, test_stories
    problems: list[Problem] = []
    used = False
    if "nlu" in document or "responses" in document:
        # A `responses:` file beside the NLU files holds retrieval-intent responses.
        used = True
        try:
            nlu = nlu.merge(read_nlu_document(document, file))
        except (DataError, DataErrors) as exc:
            problems.extend(problems_of(exc))
    if "stories" in document or "rules" in document:
        used = True
        try:
            graph = read_story_document(document, file)
        except (DataError, DataErrors) as exc:
            problems.extend(problems_of(exc))
        else:
            if file.name.startswith("test_"):
                test_stories = test_stories.merge(graph)
            else:
                stories = stories.merge(graph)
    raise_problems(problems)
    if not used:
        ignored.append(file)
        warnings.warn(f"{file}: no 'nlu', 'responses', 'stories' or 'rules' key; the file is ignored", stacklevel=2)
    return nlu, stories, test_stories


def with_story_bot_texts(domain: Domain, stories: StoryGraph) -> Domain:
    """The domain with the training stories' bot texts (`- bot: ...`) as end-to-end actions.

    Rasa adds them so policies can predict a bot text like any action; they follow the
    domain's own `e2e_actions`, sorted so the action indices never depend on set order.
    """
    texts = [text for text in sorted(stories.action_texts_used()) if text not in domain.action_texts]
    if domain.is_empty() or not texts:
        return domain
    return replace(domain, action_texts=[*domain.action_texts, *texts])


def with_retrieval_intents(domain: Domain, nlu: TrainingData) -> Domain:
    """The domain with every retrieval intent of the NLU data marked as one, as Rasa does.

    Rasa then adds the intent's `utter_<intent>` action to the domain (see
    `Domain.retrieval_actions`); the lists the user wrote stay as written.
    """
    names = set(nlu.retrieval_intents) | {
        name[len("utter_") :].split("/", 1)[0] for name in nlu.responses if name.startswith("utter_") and "/" in name
    }
    if domain.is_empty() or names <= set(domain.retrieval_intents):
        return domain
    properties = {name: dict(props) for name, props in domain.intent_properties.items()}
    for name in sorted(names):
        properties.setdefault(name, {})[IS_RETRIEVAL_INTENT] = True
    return replace(domain, intent_properties=properties)
