"""Talking to a trained assistant: the dialogue runtime behind `trainkit shell` and
`trainkit run` (slot filling, forms, responses, custom actions, the HTTP server)."""
