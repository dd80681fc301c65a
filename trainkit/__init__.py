"""trainkit: train conversational-assistant models from Rasa 3.x projects as a cached build."""

__version__ = "0.1.0"

from trainkit.model import Model, load_model  # noqa: E402
from trainkit.training import (  # noqa: E402
    TrainingResult,
    TrainingType,
    train,
    train_core,
    train_nlu,
)

__all__ = ["Model", "load_model", "TrainingResult", "TrainingType", "__version__", "train", "train_core", "train_nlu"]
