"""`trainkit validate`: the checks of `rasa data validate` that need no trained model.

Each finding is a Problem with the file and line to fix. Errors are things training
would get wrong or refuse (a story naming an action the domain does not have); warnings
are things that are probably unintended (an intent nobody uses).
"""

from __future__ import annotations

from collections import defaultdict

from trainkit.data.domain import DEFAULT_INTENTS
from trainkit.data.domain_checks import check_forms, check_responses, check_slot_mappings
from trainkit.data.events import (
    ActionExecuted,
    ActiveLoop,
    Event,
    SlotSet,
    SlotSetOr,
    UserUtteranceOr,
    UserUttered,
)
from trainkit.data.importer import Project
from trainkit.data.stories import StoryStep
from trainkit.errors import DataErrors, Problem


def _located_events(step: StoryStep) -> list[tuple[Event, int | None]]:
    out: list[tuple[Event, int | None]] = []
    for event, line in step.located_events():
        if isinstance(event, (UserUtteranceOr, SlotSetOr)):
            out.extend((alternative, line) for alternative in event.alternatives)
        else:
            out.append((event, line))
    return out


def _where(step: StoryStep) -> str:
    return f"{step.kind} '{step.block_name}'"


def check_stories(project: Project) -> list[Problem]:
    """Story and rule contents that the domain does not declare, at the step's own line.

    An action, response, slot or form the domain lacks is an error: training would crash
    on it or learn a conversation that can never happen. An intent or entity the domain
    lacks is a warning, as in Rasa (the turn is still learned, the NLU just never
    predicts it).
    """
    domain = project.domain
    problems: list[Problem] = []
    intents = set(domain.all_intents)
    actions = set(domain.action_names_or_texts)
    slots = set(domain.all_slot_names)
    forms = set(domain.forms)
    entities = set(domain.entities)
    seen: set[tuple[str, str | None, int | None]] = set()

    def report(step: StoryStep, line: int | None, message: str, level: str = "error") -> None:
        key = (message, step.path, line)
        if key not in seen:
            seen.add(key)
            problems.append(Problem(f"{_where(step)}: {message}", step.path, line, level))

    for step in [*project.stories.story_steps, *project.test_stories.story_steps]:
        for event, line in _located_events(step):
            if isinstance(event, UserUttered):
                if event.intent is not None and event.intent not in intents:
                    report(step, line, f"intent '{event.intent}' is not in the domain", "warning")
                for entity in event.entities:
                    if entity.entity not in entities:
                        report(step, line, f"entity '{entity.entity}' is not in the domain", "warning")
            elif isinstance(event, ActionExecuted):
                if event.action_name is not None and event.action_name not in actions:
                    kind = "response" if event.action_name.startswith("utter_") else "action"
                    report(step, line, f"{kind} '{event.action_name}' is not in the domain")
            elif isinstance(event, SlotSet):
                if event.key not in slots:
                    report(step, line, f"slot '{event.key}' is set but not in the domain")
            elif isinstance(event, ActiveLoop):
                if event.name is not None and event.name not in forms and event.name not in actions:
                    report(step, line, f"form '{event.name}' is not in the domain")
    return problems


# Policy options that name an action, with the option that switches the action off.
_POLICY_ACTION_OPTIONS = {
    "RulePolicy": (("core_fallback_action_name", "action_default_fallback", "enable_fallback_prediction"),),
}


def check_config_actions(project: Project) -> list[Problem]:
    """Actions that config.yml names (the core fallback action) must be in the domain."""
    problems: list[Problem] = []
    if project.domain.is_empty():
        return problems
    actions = set(project.domain.action_names_or_texts)
    path = None if project.paths.config is None else str(project.paths.config)
    for index, item in enumerate(project.config.policies):
        policy = str(item.get("name", "")).rsplit(".", 1)[-1]
        for option, default, switch in _POLICY_ACTION_OPTIONS.get(policy, ()):
            if item.get(switch, True) is False:
                continue
            name = item.get(option, default)
            if name not in actions:
                problems.append(
                    Problem(
                        f"{policy}: {option} '{name}' is not an action of the domain; add it to the "
                        "domain's actions or responses, or fix its spelling",
                        path,
                        project.config.line_of_item("policies", index),
                    )
                )
    return problems


def training_errors(project: Project) -> list[Problem]:
    """The problems that must stop dialogue training, all of them, in file order."""
    found = [p for p in [*check_stories(project), *check_config_actions(project)] if p.level == "error"]
    return found


def check_before_training(project: Project) -> None:
    """Raise DataErrors listing every problem that must stop dialogue training."""
    errors = training_errors(project)
    if errors:
        raise DataErrors(errors)


def check_nlu(project: Project) -> list[Problem]:
    """NLU intents and entities against the domain, and texts under two intents (all
    warnings, as in Rasa: the NLU still learns them)."""
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
                problems.append(
                    Problem(f"intent '{intent}' has NLU examples but is not in the domain", path, line, "warning")
                )
        for entity in data.entity_types:
            if entity not in entities:
                path, line = first_location[f"entity:{entity}"]
                problems.append(
                    Problem(f"entity '{entity}' is annotated but not in the domain", path, line, "warning")
                )
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
    problems += check_config_actions(project)
    problems += check_nlu(project)
    problems += check_unused(project)
    return problems
