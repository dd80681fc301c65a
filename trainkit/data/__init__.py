"""Reading assistants written in the Rasa 3.x file format."""
