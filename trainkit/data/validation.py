"""`trainkit validate`: the checks of `rasa data validate` that need no trained model.

Each finding is a Problem with the file and line to fix. Errors are things training
would get wrong or refuse (a story naming an action the domain does not have); warnings
are things that are probably unintended (an intent nobody uses).
"""

from __future__ import annotations

from collections import defaultdict

from trainkit.data.domain import DEFAULT_INTENTS, check_forms, check_responses, check_slot_mappings
from trainkit.data.events import (
    ActionExecuted,
    ActiveLoop,
    SlotSet,
    SlotSetOr,
    UserUtteranceOr,
    UserUttered,
)
from trainkit.data.importer import Project
from trainkit.data.stories import StoryStep
from trainkit.errors import Problem


def _step_events(step: StoryStep) -> list:
    events = []
    for event in [*step.condition, *step.events]:
        if isinstance(event, (UserUtteranceOr, SlotSetOr)):
            events.extend(event.alternatives)
        else:
            events.append(event)
    return events


def _where(step: StoryStep) -> str:
    return f"{step.kind} '{step.block_name}'"


def check_stories(project: Project) -> list[Problem]:
    """Story and rule contents that the domain does not declare."""
    domain = project.domain
    problems: list[Problem] = []
    intents = set(domain.all_intents)
    actions = set(domain.action_names_or_texts)
    slots = set(domain.all_slot_names)
    forms = set(domain.forms)
    entities = set(domain.entities)
    for step in [*project.stories.story_steps, *project.test_stories.story_steps]:
        seen: set[str] = set()

        def report(message: str, step: StoryStep = step, seen: set[str] = seen) -> None:
            if message not in seen:
                seen.add(message)
                problems.append(Problem(f"{_where(step)}: {message}", step.path, step.line))

        for event in _step_events(step):
            if isinstance(event, UserUttered):
                if event.intent is not None and event.intent not in intents:
                    report(f"intent '{event.intent}' is not in the domain")
                for entity in event.entities:
                    if entity.entity not in entities:
                        report(f"entity '{entity.entity}' is not in the domain")
            elif isinstance(event, ActionExecuted):
                if event.action_name is not None and event.action_name not in actions:
                    kind = "response" if event.action_name.startswith("utter_") else "action"
                    report(f"{kind} '{event.action_name}' is not in the domain")
            elif isinstance(event, SlotSet):
                if event.key not in slots:
                    report(f"slot '{event.key}' is set but not in the domain")
            elif isinstance(event, ActiveLoop):
                if event.name is not None and event.name not in forms and event.name not in actions:
                    report(f"form '{event.name}' is not in the domain")
    return problems


def check_nlu(project: Project) -> list[Problem]:
    """NLU intents and entities against the domain, and texts under two intents."""
    problems: list[Problem] = []
    domain = project.domain
    data = project.training_data()
    intents = set(domain.all_intents)
    entities = set(domain.entities)
    first_location: dict[str, tuple[str | None, int | None]] = {}
    intents_of_text: dict[str, set[str]] = defaultdict(set)
    for message in data.nlu_examples:
        assert message.intent is not None and message.text is not None
        first_location.setdefault(f"intent:{message.intent}", (message.path, message.line))
        intents_of_text[message.text].add(message.intent)
        first_location.setdefault(f"text:{message.text}", (message.path, message.line))
        for entity in message.entities:
            first_location.setdefault(f"entity:{entity.entity}", (message.path, message.line))
    if not domain.is_empty():
        for intent in data.intents:
            if intent not in intents:
                path, line = first_location[f"intent:{intent}"]
                problems.append(Problem(f"intent '{intent}' has NLU examples but is not in the domain", path, line))
        for entity in data.entity_types:
            if entity not in entities:
                path, line = first_location[f"entity:{entity}"]
                problems.append(Problem(f"entity '{entity}' is annotated but not in the domain", path, line))
    for text, labels in sorted(intents_of_text.items()):
        if len(labels) > 1:
            path, line = first_location[f"text:{text}"]
            problems.append(
                Problem(
                    f"the example '{text}' is listed under several intents: {', '.join(sorted(labels))}",
                    path,
                    line,
                    "warning",
                )
            )
    return problems


def check_unused(project: Project) -> list[Problem]:
    """Domain entries that no data uses (warnings)."""
    domain = project.domain
    if domain.is_empty():
        return []
    problems: list[Problem] = []
    nlu_intents = set(project.training_data().intents)
    story_intents = project.stories.intents_used()
    used_actions = project.stories.actions_used()
    for intent in domain.intents:
        path, line = domain.location("intents", intent)
        if intent not in nlu_intents and intent not in DEFAULT_INTENTS:
            problems.append(Problem(f"intent '{intent}' has no NLU examples", path, line, "warning"))
        if not project.stories.is_empty() and intent not in story_intents:
            problems.append(Problem(f"intent '{intent}' is not used in any story or rule", path, line, "warning"))
    form_slots = {s for form in domain.forms.values() for s in form.get("required_slots", [])}
    for name in domain.responses:
        if name in used_actions or "/" in name:
            continue
        if name.startswith("utter_ask_") and (name[len("utter_ask_"):] in form_slots or "_" in name):
            continue  # forms ask for their slots themselves
        path, line = domain.location("responses", name)
        problems.append(Problem(f"response '{name}' is not used in any story or rule", path, line, "warning"))
    return problems


def validate_project(project: Project) -> list[Problem]:
    """Every finding, errors and warnings, in a stable order."""
    problems: list[Problem] = []
    if project.domain.is_empty():
        problems.append(Problem("the domain is empty or missing", str(project.paths.domain) if project.paths.domain else None))
    data = project.training_data()
    if project.stories.is_empty() and data.contains_no_pure_nlu_data():
        where = ", ".join(str(p) for p in project.paths.data) or None
        problems.append(Problem("no training data: no NLU examples, stories or rules were found", where))
    problems += check_forms(project.domain)
    problems += check_slot_mappings(project.domain)
    problems += check_responses(project.domain)
    problems += check_stories(project)
    problems += check_nlu(project)
    problems += check_unused(project)
    return problems
