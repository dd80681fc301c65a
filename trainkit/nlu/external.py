"""Components that depend on spaCy models.

trainkit trains with numpy only and does not run spaCy, so these components are
recognised (a Rasa config naming them gets a precise message instead of "unknown
component") but refuse to build. The check happens at construction, which the recipe
does while compiling, so the user learns before any training starts. Nothing is ever
substituted silently: a different featurizer would give a different model.
"""

from __future__ import annotations

import importlib.util
from typing import Any, ClassVar

from trainkit.engine.component import (
    ENTITY_EXTRACTOR,
    FEATURIZER,
    PROVIDER,
    TOKENIZER,
    register,
)
from trainkit.engine.options import Choice, OfType, Option, strings
from trainkit.errors import ConfigError
from trainkit.nlu.base import NLUComponent

ALTERNATIVE = "use WhitespaceTokenizer with CountVectorsFeaturizer (word and char_wb) instead"


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


class _ExternalModelComponent(NLUComponent):
    """Refuses to build, naming what is missing and what to use instead."""

    package: ClassVar[str] = ""

    def model_name(self) -> str | None:
        """The pretrained model the config asks for, if it names one."""
        return None

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        if not _installed(self.package):
            raise ConfigError(
                f"{self.name} needs the '{self.package}' package, which is not installed; {ALTERNATIVE}"
            )
        model = self.model_name()
        if model and self.package == "spacy" and not _installed(model):
            raise ConfigError(
                f"{self.name} needs the spaCy model '{model}', which is not installed; {ALTERNATIVE}"
            )
        raise ConfigError(
            f"{self.name} is not supported by trainkit even though '{self.package}' is installed "
            f"(trainkit does not run {self.package} models); {ALTERNATIVE}"
        )


class _SpacyComponent(_ExternalModelComponent):
    package = "spacy"


@register
class SpacyNLP(_SpacyComponent):
    """Loads a spaCy language model for the spaCy components."""

    name = "SpacyNLP"
    version = "1"
    roles: ClassVar[frozenset[str]] = frozenset({PROVIDER})
    defaults: ClassVar[dict[str, Any]] = {"model": Option(None, OfType((str,), null=True)), "case_sensitive": False}

    def model_name(self) -> str | None:
        return self.config.get("model")


@register
class SpacyTokenizer(_SpacyComponent):
    """spaCy's tokenizer."""

    name = "SpacyTokenizer"
    version = "1"
    roles: ClassVar[frozenset[str]] = frozenset({TOKENIZER})
    defaults: ClassVar[dict[str, Any]] = {
        "intent_tokenization_flag": False,
        "intent_split_symbol": "_",
        "token_pattern": Option(None, OfType((str,), null=True)),
    }


@register
class SpacyFeaturizer(_SpacyComponent):
    """Dense word vectors from a spaCy model."""

    name = "SpacyFeaturizer"
    version = "1"
    roles: ClassVar[frozenset[str]] = frozenset({FEATURIZER})
    defaults: ClassVar[dict[str, Any]] = {
        "pooling": Option("mean", Choice(("mean", "max"))),
        "alias": Option(None, OfType((str,), null=True)),
    }


@register
class SpacyEntityExtractor(_SpacyComponent):
    """spaCy's pretrained named-entity recogniser."""

    name = "SpacyEntityExtractor"
    version = "1"
    roles: ClassVar[frozenset[str]] = frozenset({ENTITY_EXTRACTOR})
    defaults: ClassVar[dict[str, Any]] = {"dimensions": Option(None, strings(1_000, null=True))}
