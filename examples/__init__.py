"""Example assistants written for trainkit, in the Rasa 3.x file format."""
