"""The model-training entry points: `train`, `train_core`, `train_nlu`.

They mirror Rasa 3.x's functions and result codes so scripts written for `rasa train`
keep working, and add what a build tool should have: dry runs and forced runs for every
entry point, parallel jobs, and per-node reasons for retraining.

The heavy parts (YAML readers, the graph, numpy components) are imported inside the
functions that need them: a build with nothing to do is answered from the plan memo
(`trainkit.engine.memo`) before any of them loads.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import trainkit
from trainkit.errors import ConfigError, TrainkitError

SCHEDULER_ENV = "TRAINKIT_DASK_SCHEDULER"

if TYPE_CHECKING:
    from trainkit.data.importer import Project
    from trainkit.engine.cache import Cache
    from trainkit.engine.recipe import Recipe
    from trainkit.engine.runner import BuildReport, BuildSpec

logger = logging.getLogger(__name__)

CODE_NEEDS_TO_BE_RETRAINED = 0b0001
CODE_FORCED_TRAINING = 0b1000


class TrainingType(IntEnum):
    """Which halves of a model a training run produces (values as in Rasa's metadata)."""

    NLU = 1
    CORE = 2
    BOTH = 3
    END_TO_END = 4

    @property
    def model_type(self) -> str:
        """"nlu", "core", or "rasa" for a full model."""
        return {1: "nlu", 2: "core"}.get(int(self), "rasa")


class TrainingResult(NamedTuple):
    """What a training call returns (Rasa's shape)."""

    model: str | None = None
    code: int = 0
    dry_run_results: dict[str, Any] | None = None


class NoTrainingData(TrainkitError):
    """Neither stories nor NLU data were found."""


class UnresolvedSlots(TrainkitError):
    """Stories set slots the domain does not declare."""

    def __init__(self, slots: list[str]) -> None:
        self.slots = slots
        listed = ", ".join(f"'{s}'" for s in slots)
        super().__init__(
            f"Unresolved slots found in stories/rules: {listed} are set but not declared in the "
            "domain. Add them to the domain's 'slots' or fix their spelling."
        )


def detect_training_type(project: Project) -> TrainingType:
    """Rasa's rules: e2e if stories hold texts, NLU without domain or stories, Core without NLU."""
    nlu_data = project.training_data()
    training_type = TrainingType.BOTH
    if nlu_data.has_e2e_examples() or project.stories.has_e2e_steps():
        training_type = TrainingType.END_TO_END
    if project.stories.is_empty() and nlu_data.contains_no_pure_nlu_data():
        raise NoTrainingData(
            "No training data given. Provide stories and NLU data with --data (no NLU examples, "
            "stories or rules were found)."
        )
    if project.domain.is_empty():
        logger.warning("No domain found: only an NLU model is trained.")
        return TrainingType.NLU
    if project.stories.is_empty():
        logger.warning("No stories or rules found: only an NLU model is trained.")
        return TrainingType.NLU
    if nlu_data.contains_no_pure_nlu_data() and not nlu_data.has_e2e_examples():
        logger.warning("No NLU data found: only a Core model is trained.")
        return TrainingType.CORE
    return training_type


def model_labels(project: Project, use_nlu: bool, use_core: bool) -> dict[str, Any]:
    """What a model trained on the project can predict; a finetune must keep all of it."""
    labels: dict[str, Any] = {}
    if use_nlu:
        data = project.training_data()
        labels["nlu"] = {
            "intents": data.intents,
            "entities": data.entity_types,
            "responses": sorted({m.intent_response_key for m in data.nlu_examples if m.intent_response_key}),
        }
    if use_core:
        domain = project.domain
        slots = {}
        for slot in domain.slots:
            described = slot.as_dict()
            slots[slot.name] = {k: v for k, v in described.items() if k not in ("mappings", "initial_value", "name")}
        labels["core"] = {
            "actions": list(domain.action_names_or_texts),
            "intents": list(domain.all_intents),
            "entities": sorted(domain.entities),
            "slots": slots,
            "forms": list(domain.form_names),
        }
    return labels


def unresolved_slots(project: Project) -> list[str]:
    """Slots set in stories or rules that the domain does not declare, sorted."""
    return sorted(project.stories.slot_names_set() - set(project.domain.all_slot_names))


@dataclass
class TrainingPlan:
    """Everything decided before any node runs: the graph, where state lives, the output."""

    project: Project
    training_type: TrainingType
    recipe: Recipe
    spec: BuildSpec
    output: Path
    fixed_model_name: str | None
    finetuned_from: Path | None = None

    def cache(self) -> Cache:
        """The cache of this plan."""
        return self.spec.cache()


def prepare(
    domain: str | Path | None,
    config: str | Path | None,
    training_files: str | Path | list[str | Path] | None,
    output: str | Path = "models",
    fixed_model_name: str | None = None,
    core_additional_arguments: dict[str, Any] | None = None,
    only: TrainingType | None = None,
    project_dir: str | Path | None = None,
    persist_nlu_training_data: bool = False,
    model_to_finetune: str | Path | None = None,
    finetuning_epoch_fraction: float = 1.0,
) -> TrainingPlan:
    """Load the project and compile its graph; nothing trains yet.

    With `model_to_finetune` (an archive, a directory of archives, or "" for the newest in
    `output`), the model is checked for compatibility and its trainable components become
    the starting point of the matching nodes (see `trainkit.engine.finetune`).
    """
    from trainkit.data.importer import ProjectPaths, load_project_paths
    from trainkit.engine.cache import Cache
    from trainkit.engine.memo import state_dir
    from trainkit.engine.package import PackageSettings
    from trainkit.engine.recipe import compile_recipe
    from trainkit.engine.runner import BuildSpec, paths_as_dict, temporary_cache_root

    paths = ProjectPaths.create(config, domain, training_files)
    project = load_project_paths(paths)
    if only == TrainingType.NLU:
        if project.training_data().contains_no_pure_nlu_data():
            raise NoTrainingData("No NLU data given: the data paths hold no NLU examples.")
        training_type = TrainingType.NLU
    else:
        training_type = detect_training_type(project)
        if only == TrainingType.CORE:
            if project.domain.is_empty():
                raise NoTrainingData("Core training needs a domain, and none was found.")
            if project.stories.is_empty():
                raise NoTrainingData("No stories or rules given: Core training needs them.")
            training_type = TrainingType.CORE
    if training_type != TrainingType.NLU:
        from trainkit.data.validation import check_before_training

        missing = unresolved_slots(project)
        if missing:
            raise UnresolvedSlots(missing)
        check_before_training(project)  # every unknown action or response, before anything trains
    use_nlu = bool(project.config.pipeline) and training_type != TrainingType.CORE
    use_core = bool(project.config.policies) and training_type != TrainingType.NLU
    if training_type == TrainingType.NLU and not use_nlu:
        raise ConfigError("Can't train an NLU model without a pipeline in the config.", paths.config)
    if training_type == TrainingType.CORE and not use_core:
        raise ConfigError("Can't train a Core model without policies in the config.", paths.config)
    recipe = compile_recipe(project.config, use_nlu, use_core, core_additional_arguments, persist_nlu_training_data,
                            stories_have_texts=use_core and project.stories.has_e2e_steps())
    base = (Path(project_dir) if project_dir is not None else Path.cwd()).absolute()
    cache = Cache.for_project(base)
    root = str(cache.root) if cache.enabled else temporary_cache_root()
    settings = PackageSettings(
        training_type=int(training_type),
        model_type=training_type.model_type,
        predict_schema=recipe.predict_schema(),
        assistant_id=project.config.assistant_id,
        language=project.config.language,
        output=str(Path(output).absolute()),
        fixed_model_name=fixed_model_name,
        trainkit_version=trainkit.__version__,
        labels=model_labels(project, use_nlu, use_core),
    )
    finetuned_from = None
    if model_to_finetune is not None:
        finetuned_from = _attach_base_model(model_to_finetune, finetuning_epoch_fraction, output, recipe,
                                            settings.labels, Cache(Path(root), cache.max_size_bytes if cache.enabled else None),
                                            state_dir(base))
    spec = BuildSpec(
        nodes=[node.as_dict() for node in recipe.nodes],
        paths=paths_as_dict(paths),
        cache_root=root,
        cache_max_size=cache.max_size_bytes if cache.enabled else None,
        state_dir=str(state_dir(base).absolute()),
        project_dir=str(base.absolute()),
        package=settings.as_dict(),
    )
    return TrainingPlan(project, training_type, recipe, spec, Path(output), fixed_model_name, finetuned_from)


def _attach_base_model(model: str | Path, fraction: float, output: str | Path, recipe: Recipe,
                       labels: dict[str, Any], cache: Cache, state: Path) -> Path:
    from trainkit.engine import finetune
    from trainkit.engine.verified_bases import VerifiedBases

    fraction = finetune.check_fraction(fraction)
    path = finetune.resolve_model_path(model, output)
    memo = VerifiedBases(state)
    base = finetune.open_base_model(path, memo)
    try:
        finetune.check_compatible(base, recipe.nodes, labels)
        names = finetune.attach_base(base, recipe.nodes, cache, fraction)
        verified = base.verified()
        if verified is not None:
            memo.remember(verified)
    finally:
        base.close()
    logger.info("Finetuning %s from '%s' with epoch fraction %g.", ", ".join(names) or "nothing", path, fraction)
    return path


def dry_run_results(report: BuildReport) -> dict[str, Any]:
    """Node name (and "package") -> {status, reason, fingerprint}."""
    return {name: status.as_dict() for name, status in sorted(report.all_statuses().items())}


def dry_run_code(report: BuildReport, force: bool) -> int:
    """0 if nothing would train or be written, 1 if something would, 8 when training is forced."""
    if force:
        return CODE_FORCED_TRAINING
    stale = [s for s in report.all_statuses().values() if not s.up_to_date]
    return CODE_NEEDS_TO_BE_RETRAINED if stale else 0


def _run(plan: TrainingPlan, dry: bool, force: bool, n_jobs: int,
         scheduler: str | None = None) -> tuple[TrainingResult, BuildReport]:
    from trainkit.engine.lock import project_lock
    from trainkit.engine.runner import build, dry_run

    if dry:
        report = dry_run(plan.spec, force)
        code = dry_run_code(report, force)
        if code == CODE_FORCED_TRAINING:
            logger.warning("The training was forced.")
        elif code:
            logger.warning("The model needs to be retrained.")
        else:
            logger.info("No training of components required.")
        return TrainingResult(code=code, dry_run_results=dry_run_results(report)), report
    with project_lock(Path(plan.spec.state_dir)):
        report = build(plan.spec, force=force, n_jobs=n_jobs, scheduler=scheduler)
    if report.trained:
        logger.info("Trained %d node(s): %s", len(report.trained), ", ".join(report.trained))
    else:
        logger.info("Nothing to train: every component was restored from the cache.")
    if report.written:
        logger.info("Model saved at '%s'.", _shown(report.model))
    else:
        logger.info("Model '%s' is up to date; nothing was written.", _shown(report.model))
    return TrainingResult(model=_shown(report.model), code=0), report


def _shown(path: Path | None) -> str | None:
    """A model path as users expect it: relative to the working directory when inside it."""
    if path is None:
        return None
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _train(
    domain: str | Path | None,
    config: str | Path | None,
    data: str | Path | list[str | Path] | None,
    *,
    output: str | Path,
    fixed_model_name: str | None,
    core_arguments: dict[str, Any] | None,
    only: TrainingType | None,
    model_to_finetune: str | Path | None,
    finetuning_epoch_fraction: float,
    persist_nlu_training_data: bool,
    dry_run: bool,
    force_training: bool,
    n_jobs: int,
    project_dir: str | Path | None,
    scheduler: str | None = None,
) -> TrainingResult:
    from trainkit.data.paths import ProjectPaths
    from trainkit.engine import memo
    from trainkit.engine.cache import Cache

    base = (Path(project_dir) if project_dir is not None else Path.cwd()).absolute()
    paths = ProjectPaths.create(config, domain, data)
    options = {
        "paths": [None if paths.config is None else str(paths.config.absolute()),
                  None if paths.domain is None else str(paths.domain.absolute()),
                  [str(p.absolute()) for p in paths.data]],
        "output": str(Path(output).absolute()), "fixed_model_name": fixed_model_name,
        "core_arguments": core_arguments or {}, "only": None if only is None else int(only),
        "persist_nlu_training_data": persist_nlu_training_data, "project_dir": str(base),
    }
    cache = Cache.for_project(base)
    # A finetune is always planned: its base model is an input the memo does not watch.
    key = _memo_key(memo, paths, options, cache) if cache.enabled and model_to_finetune is None else None
    if key is not None and not force_training:
        hit = memo.recall(memo.state_dir(base), key, cache, Path(output).absolute(), fixed_model_name)
        if hit is not None:
            hit.replay_notices()
            if dry_run:
                logger.info("No training of components required.")
                return TrainingResult(code=0, dry_run_results=hit.dry_run_results())
            logger.info("Nothing to train: every component was restored from the cache.")
            logger.info("Model '%s' is up to date; nothing was written.", _shown(hit.model))
            return TrainingResult(model=_shown(hit.model), code=0)
    try:
        with memo.collecting_notices() as notices:
            plan = prepare(domain, config, data, output, fixed_model_name, core_arguments, only, project_dir,
                           persist_nlu_training_data, model_to_finetune, finetuning_epoch_fraction)
    except NoTrainingData as exc:
        logger.error("%s", exc)
        return TrainingResult(code=CODE_NEEDS_TO_BE_RETRAINED)
    scheduler = scheduler or os.environ.get(SCHEDULER_ENV, "").strip() or None
    result, report = _run(plan, dry_run, force_training, n_jobs, scheduler)
    if key is not None and not dry_run and report.model is not None and report.package is not None \
            and _memo_key(memo, paths, options, cache) == key:  # the files did not change meanwhile
        from trainkit.engine.component import get_component

        nodes = {name: (s.fingerprint or "", s.digest or "") for name, s in report.statuses.items()}
        classes = [get_component(node["component"]) for node in plan.spec.nodes]
        resources = [[cls.__module__, cls.__qualname__, node["config"], digest]
                     for node, cls in zip(plan.spec.nodes, classes, strict=True)
                     if (digest := cls.resources_digest(node["config"])) is not None]
        memo.remember(memo.state_dir(base), key, report.model, report.package.fingerprint or "", nodes,
                      classes, notices, resources)
    return result


def _memo_key(memo: Any, paths: Any, options: dict[str, Any], cache: Cache) -> str | None:
    try:
        return memo.memo_key(paths, options, cache)
    except (TrainkitError, OSError):
        return None  # a missing or unreadable file: the planner reports it properly

def train(
    domain: str | Path | None,
    config: str | Path | None,
    training_files: str | Path | list[str | Path] | None,
    output: str | Path = "models",
    dry_run: bool = False,
    force_training: bool = False,
    fixed_model_name: str | None = None,
    persist_nlu_training_data: bool = False,
    core_additional_arguments: dict[str, Any] | None = None,
    nlu_additional_arguments: dict[str, Any] | None = None,
    model_to_finetune: str | Path | None = None,
    finetuning_epoch_fraction: float = 1.0,
    n_jobs: int = 1,
    project_dir: str | Path | None = None,
    scheduler: str | None = None,
) -> TrainingResult:
    """Train an NLU and/or Core model from an assistant's files (Rasa's `train`).

    `project_dir` (default: the current directory) holds the cache and build state.
    `n_jobs` independent nodes train at once (never more than the cores allow, see
    `trainkit.engine.threads`); `scheduler` (or `TRAINKIT_DASK_SCHEDULER`), a Dask
    scheduler address such as `tcp://10.0.0.5:8786`, trains them on a cluster instead.
    `nlu_additional_arguments` (Rasa's thread settings) has nothing to configure here.
    """
    return _train(domain, config, training_files, output=output, fixed_model_name=fixed_model_name,
                  core_arguments=core_additional_arguments, only=None, model_to_finetune=model_to_finetune,
                  finetuning_epoch_fraction=finetuning_epoch_fraction,
                  persist_nlu_training_data=persist_nlu_training_data, dry_run=dry_run,
                  force_training=force_training, n_jobs=n_jobs, project_dir=project_dir, scheduler=scheduler)


def train_core(
    domain: str | Path | None,
    config: str | Path | None,
    stories: str | Path | list[str | Path] | None,
    output: str | Path = "models",
    fixed_model_name: str | None = None,
    additional_arguments: dict[str, Any] | None = None,
    model_to_finetune: str | Path | None = None,
    finetuning_epoch_fraction: float = 1.0,
    dry_run: bool = False,
    force_training: bool = False,
    n_jobs: int = 1,
    project_dir: str | Path | None = None,
    scheduler: str | None = None,
) -> TrainingResult:
    """Train only the dialogue policies."""
    return _train(domain, config, stories, output=output, fixed_model_name=fixed_model_name,
                  core_arguments=additional_arguments, only=TrainingType.CORE, model_to_finetune=model_to_finetune,
                  finetuning_epoch_fraction=finetuning_epoch_fraction,
                  persist_nlu_training_data=False, dry_run=dry_run, force_training=force_training,
                  n_jobs=n_jobs, project_dir=project_dir, scheduler=scheduler)


def train_nlu(
    config: str | Path | None,
    nlu_data: str | Path | list[str | Path] | None,
    output: str | Path = "models",
    fixed_model_name: str | None = None,
    persist_nlu_training_data: bool = False,
    additional_arguments: dict[str, Any] | None = None,
    domain: str | Path | None = None,
    model_to_finetune: str | Path | None = None,
    finetuning_epoch_fraction: float = 1.0,
    dry_run: bool = False,
    force_training: bool = False,
    n_jobs: int = 1,
    project_dir: str | Path | None = None,
    scheduler: str | None = None,
) -> TrainingResult:
    """Train only the NLU pipeline."""
    return _train(domain, config, nlu_data, output=output, fixed_model_name=fixed_model_name,
                  core_arguments=None, only=TrainingType.NLU, model_to_finetune=model_to_finetune,
                  finetuning_epoch_fraction=finetuning_epoch_fraction,
                  persist_nlu_training_data=persist_nlu_training_data, dry_run=dry_run,
                  force_training=force_training, n_jobs=n_jobs, project_dir=project_dir, scheduler=scheduler)


__all__ = [
    "CODE_FORCED_TRAINING",
    "CODE_NEEDS_TO_BE_RETRAINED",
    "TrainingPlan",
    "TrainingResult",
    "TrainingType",
    "detect_training_type",
    "prepare",
    "train",
    "train_core",
    "train_nlu",
]
