"""trainkit: train conversational-assistant models from Rasa 3.x projects as a cached build.

The public names are imported on first use, so `trainkit train` with nothing to do
does not pay for numpy, networkx or the YAML readers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_PUBLIC = {
    "Model": "trainkit.model",
    "load_model": "trainkit.model",
    "TrainingResult": "trainkit.training",
    "TrainingType": "trainkit.training",
    "train": "trainkit.training",
    "train_core": "trainkit.training",
    "train_nlu": "trainkit.training",
}

if TYPE_CHECKING:
    from trainkit.model import Model, load_model
    from trainkit.training import TrainingResult, TrainingType, train, train_core, train_nlu


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        import importlib

        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'trainkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])


__all__ = ["Model", "load_model", "TrainingResult", "TrainingType", "__version__", "train", "train_core", "train_nlu"]
