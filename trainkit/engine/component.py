"""Components: the classes users name in config.yml, and their registry.

A component declares its defaults and an explicit implementation `version`; the version
is part of every fingerprint, so bumping it is how a code change invalidates exactly the
cache entries that component produced. Config merging happens once, here, so the
fingerprint, the trainer and the loaded model all see the same merged config.

The defaults table also declares what each option accepts (see `trainkit.engine.options`);
constructing a component checks its merged config against it, and against a memory
estimate for size options, so a bad value stops the build before anything trains (the
recipe adds the config file and line) and a bad value stored in a model stops loading.
"""

from __future__ import annotations

import copy
import importlib
import os
import warnings
from collections.abc import Iterable
from typing import Any, ClassVar

from trainkit.engine.artifact import Artifact, ArtifactWriter
from trainkit.engine.cache import parse_size
from trainkit.engine.options import Check, Option, infer_check
from trainkit.errors import ConfigError, GraphError, TrainkitError

Inputs = dict[str, "Artifact | list[Artifact]"]

# Roles a component can play in a pipeline; the recipe wires nodes by role.
TOKENIZER = "tokenizer"
FEATURIZER = "featurizer"
INTENT_CLASSIFIER = "intent_classifier"
ENTITY_EXTRACTOR = "entity_extractor"
RESPONSE_SELECTOR = "response_selector"
POLICY = "policy"
PROVIDER = "provider"

_REGISTRY: dict[str, type[Component]] = {}


class Component:
    """Base class of every graph component (scikit-learn vocabulary where it fits).

    Subclasses set `name`, `version`, `roles`, `trainable`, `defaults`, and implement:
    - `train(inputs, out)` if trainable: learn from upstream artifacts, persist to `out`;
    - `process_training_data(inputs, out)` if it adds tokens/features for later nodes;
    - `load(config, model)` and `process(batch)` (NLU) or `predict(...)` (policies) for
      a loaded model.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    roles: ClassVar[frozenset[str]] = frozenset()
    trainable: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {}
    # What each option accepts; filled from `Option` entries of `defaults` (and inferred
    # for plain boolean/string defaults) when the subclass is defined.
    options: ClassVar[dict[str, Check]] = {}
    # Options Rasa has that trainkit accepts but does not implement: warned about once.
    unsupported_options: ClassVar[frozenset[str]] = frozenset()
    # Set for a component trainkit accepts but does not implement: warned about once.
    unsupported_reason: ClassVar[str | None] = None
    # Roles that must appear earlier in the pipeline (e.g. featurizers need a tokenizer).
    requires: ClassVar[tuple[str, ...]] = ()
    # Rasa's policy priority, used to break ties between policies.
    priority: ClassVar[int] = 0
    # Whether `train` can start from a base model's output (`inputs["base_model"]`).
    finetunable: ClassVar[bool] = False
    # The options that say how long training runs; finetuning scales them.
    epoch_options: ClassVar[tuple[str, ...]] = ("epochs",)
    # The config.yml name of a provider that must come earlier in the pipeline (SpacyNLP
    # for the spaCy components). The recipe copies the provider's merged config into this
    # component's config under that name, so the node, the model and prediction all see
    # the same provider settings.
    provider: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = cls.__dict__.get("defaults")
        if declared is None:
            return
        plain: dict[str, Any] = {}
        checks: dict[str, Check] = {}
        for key, entry in declared.items():
            if isinstance(entry, Option):
                plain[key], checks[key] = entry.default, entry.check
            else:
                plain[key] = entry
                inferred = infer_check(entry)
                if inferred is not None:
                    checks[key] = inferred
        cls.defaults = plain
        cls.options = checks

    def __init__(self, config: dict[str, Any]) -> None:
        check_options(type(self), config)
        self.config = config

    @classmethod
    def resources_digest(cls, config: dict[str, Any]) -> str | None:
        """Digest of what outside the code and the config decides this component's output
        (pretrained weights, an installed language model), or None when nothing does.

        The planner puts it into the node's fingerprint, so replacing the weights on disk
        makes exactly the nodes that read them stale. A component whose resources are
        missing raises a ConfigError naming them and how to provide them.
        """
        return None

    @classmethod
    def estimated_memory(cls, config: dict[str, Any]) -> int:
        """Bytes training needs whatever the data (weights and optimizer state), for size
        options that could ask for more than a machine has; 0 when nothing is sized."""
        return 0

    @classmethod
    def finetuning_config(cls, config: dict[str, Any], fraction: float) -> dict[str, Any]:
        """The config a finetuning run trains with: Rasa's `ceil(epochs * fraction)` for
        each of `epoch_options` (at least one where the base trained at all)."""
        import math

        scaled = dict(config)
        for key in cls.epoch_options:
            value = config.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                scaled[key] = max(1, math.ceil(value * fraction))
        return scaled

    def train(self, inputs: Inputs, out: ArtifactWriter) -> None:
        """Learn from upstream artifacts and persist the learned state to `out`.

        When finetuning, `inputs["base_model"]` is this node's output in the model to
        finetune (only for `finetunable` components)."""
        raise NotImplementedError(f"{self.name} is not trainable")

    def process_training_data(self, inputs: Inputs, out: ArtifactWriter) -> None:
        """Add this component's output (tokens, features) for the training data."""
        raise NotImplementedError(f"{self.name} does not process training data")

    @classmethod
    def load(cls, config: dict[str, Any], model: Artifact | None) -> Component:
        """Rebuild a trained component from its artifact (None when it persisted nothing)."""
        return cls(config)


def merge_config(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Defaults updated by the user's values; nested dicts are merged key by key."""
    merged = copy.deepcopy(defaults)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_config(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def component_config(cls: type[Component], item: dict[str, Any], where: str = "") -> dict[str, Any]:
    """The merged config of one pipeline/policy item, warning about options not implemented."""
    user = {k: v for k, v in item.items() if k != "name"}
    if cls.unsupported_reason:
        warnings.warn(f"{where}{cls.name} {cls.unsupported_reason}", stacklevel=2)
    for key in sorted(user):
        if key in cls.unsupported_options:
            warnings.warn(
                f"{where}{cls.name}: option '{key}' is not supported by trainkit and is ignored",
                stacklevel=2,
            )
        elif key not in cls.defaults:
            warnings.warn(f"{where}{cls.name}: unknown option '{key}' is ignored", stacklevel=2)
    known = {k: v for k, v in user.items() if k in cls.defaults}
    return merge_config(cls.defaults, known)


MEMORY_LIMIT_ENV = "TRAINKIT_MAX_MODEL_MEMORY"


def memory_budget() -> int:
    """What one component may plan to allocate: `TRAINKIT_MAX_MODEL_MEMORY`, else the
    machine's physical memory."""
    text = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if text:
        try:
            budget = parse_size(text)
        except TrainkitError:
            budget = -1
        if budget is None or budget <= 0:
            raise ConfigError(f"{MEMORY_LIMIT_ENV}={text!r} is not a size; use e.g. 800M or 4G")
        return budget
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 1 << 62


def _gigabytes(size: int) -> str:
    return f"{size / 1024**3:.1f} GB"


def check_options(cls: type[Component], config: dict[str, Any]) -> None:
    """Refuse option values outside their declaration, then sizes that cannot fit."""
    for key, check in cls.options.items():
        if key in config:
            problem = check.problem(config[key])
            if problem is not None:
                raise ConfigError(f"{cls.name}: option '{key}' {problem}")
    needed = cls.estimated_memory(config)
    budget = memory_budget()
    if needed > budget:
        raise ConfigError(
            f"{cls.name}: these sizes need about {_gigabytes(needed)} of memory to train, more "
            f"than the {_gigabytes(budget)} available ({MEMORY_LIMIT_ENV}); use smaller "
            "layers or dimensions"
        )


def register(cls: type[Component]) -> type[Component]:
    """Class decorator: make a component available under its config.yml name."""
    if not cls.name:
        raise TypeError(f"{cls.__qualname__} has no name")
    _REGISTRY[cls.name] = cls
    return cls


_BUILTIN_MODULES = ("trainkit.engine.providers", "trainkit.nlu.components", "trainkit.core.policies")
_builtins_loaded = False


def _load_builtin_components() -> None:
    """Import the modules whose import registers trainkit's own components."""
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True

    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def get_component(name: str) -> type[Component]:
    """The registered class for a config.yml name.

    A dotted name (`my_package.components.MyTokenizer`) is imported, as Rasa imports
    custom components: the class must subclass Component, and importing it registers it.
    A dotted name whose last part is a built-in component resolves to the built-in.
    """
    _load_builtin_components()
    short = name.rsplit(".", 1)[-1]
    known = _REGISTRY.get(short)
    # A dotted name means the class in that module, unless its last part is a built-in
    # (Rasa's own dotted names): two packages may both define a `MyTokenizer`.
    if known is not None and ("." not in name or known.__module__.startswith("trainkit.")):
        return known
    if "." in name:
        module_name, _, class_name = name.rpartition(".")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise GraphError(f"cannot import component module '{module_name}': {exc}") from None
        cls = getattr(module, class_name, None)
        if isinstance(cls, type) and issubclass(cls, Component):
            return register(cls) if cls.name else cls
        raise GraphError(f"'{name}' is not a trainkit component class")
    raise GraphError(f"unknown component '{name}'")


def registered_components() -> dict[str, type[Component]]:
    """All registered components by name."""
    _load_builtin_components()
    return dict(_REGISTRY)


ALLOW_CUSTOM_ENV = "TRAINKIT_ALLOW_CUSTOM_COMPONENTS"


class ComponentNotAllowed(TrainkitError):
    """A model names a component from a package its loader has not allowed."""


def _is_builtin(cls: type[Component]) -> bool:
    return cls.__module__ == "trainkit" or cls.__module__.startswith("trainkit.")


def allowed_packages(allow_custom: Iterable[str] = ()) -> frozenset[str]:
    """The packages allowed to provide components: the caller's plus the environment's."""
    from_environment = os.environ.get(ALLOW_CUSTOM_ENV, "").split(",")
    return frozenset(name.strip() for name in [*allow_custom, *from_environment] if name.strip())


def model_component(name: str, allow_custom: Iterable[str] = ()) -> type[Component]:
    """The class for a component named in a model archive, never importing by surprise.

    A model file is data from wherever it was downloaded; letting its metadata pick a
    module to import would let it run any code on load. So only trainkit's own
    components resolve, plus components of packages the caller allows explicitly
    (``allow_custom`` or ``TRAINKIT_ALLOW_CUSTOM_COMPONENTS``, comma-separated). A
    package is allowed with its subpackages, never a name that merely starts the same.
    """
    _load_builtin_components()
    short = name.rsplit(".", 1)[-1]
    registered = _REGISTRY.get(short)
    if registered is not None and _is_builtin(registered):
        return registered
    module_name = name.rpartition(".")[0]
    allowed = allowed_packages(allow_custom)
    if module_name and any(module_name == p or module_name.startswith(p + ".") for p in allowed):
        return get_component(name)
    if registered is not None and registered.__module__.split(".")[0] in allowed:
        return registered
    package = (module_name or name).split(".")[0]
    raise ComponentNotAllowed(
        f"component {name!r} is not built into trainkit; if you trust the package "
        f"'{package}', allow it with load_model(..., allow_custom=[{package!r}]) or "
        f"{ALLOW_CUSTOM_ENV}={package}"
    )
