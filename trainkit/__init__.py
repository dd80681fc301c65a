"""trainkit: train conversational-assistant models from Rasa 3.x projects as a cached build."""

__version__ = "0.1.0"
