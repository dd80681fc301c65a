"""Components that depend on Hugging Face models (spaCy's are in `spacy_components`).

trainkit trains with numpy only and ships no pretrained models, so these components are
recognised (a Rasa config naming them gets a precise message instead of "unknown
component") but refuse to build. The check happens at construction, which the recipe
does while compiling, so the user learns before any training starts. Nothing is ever
substituted silently: a different featurizer would give a different model.
"""

from __future__ import annotations

import importlib.util
from typing import Any, ClassVar

from trainkit.engine.component import FEATURIZER, register
from trainkit.engine.options import OfType, Option
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

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        if not _installed(self.package):
            raise ConfigError(
                f"{self.name} needs the '{self.package}' package, which is not installed; {ALTERNATIVE}"
            )
        raise ConfigError(
            f"{self.name} is not supported by trainkit even though '{self.package}' is installed "
            f"(trainkit does not run {self.package} models); {ALTERNATIVE}"
        )


@register
class LanguageModelFeaturizer(_ExternalModelComponent):
    """Dense features from a pretrained transformer (BERT, GPT, ...)."""

    name = "LanguageModelFeaturizer"
    version = "1"
    roles: ClassVar[frozenset[str]] = frozenset({FEATURIZER})
    package = "transformers"
    defaults: ClassVar[dict[str, Any]] = {
        "model_name": "bert",
        "model_weights": Option(None, OfType((str,), null=True)),
        "cache_dir": Option(None, OfType((str,), null=True)),
        "alias": Option(None, OfType((str,), null=True)),
    }
