"""`trainkit shell`: a conversation on the terminal, one line of input per message.

Input is read line by line from any stream, so the shell works the same on a terminal
and with piped input (scripts, tests). `/stop` ends the session; `/restart` and
`/intent{"entity": "value"}` messages go to the assistant as in Rasa's shell; a number
picks a button of the bot's latest message. Custom actions and other things the person
at the keyboard should know, but a user would not see, are printed as `[notes]`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from trainkit.dialogue.conversation import Conversation

STOP = "/stop"


def format_message(message: dict[str, Any]) -> list[str]:
    """The lines one bot message prints as: its text, then its buttons numbered."""
    lines = [str(message["text"])] if message.get("text") is not None else []
    if message.get("image"):
        lines.append(f"Image: {message['image']}")
    for number, button in enumerate(message.get("buttons") or [], start=1):
        lines.append(f"  {number}: {button.get('title', '')} ({button.get('payload', '')})")
    if message.get("custom") is not None:
        lines.append(json.dumps(message["custom"], ensure_ascii=False))
    if message.get("attachment") is not None:
        lines.append(f"Attachment: {message['attachment']}")
    return lines


def _chosen_button(text: str, buttons: list[dict[str, Any]]) -> str:
    """A number picks that button's payload; anything else is sent as typed."""
    if text.isdigit() and 1 <= int(text) <= len(buttons):
        return str(buttons[int(text) - 1].get("payload", text))
    return text


def run_shell(conversation: Conversation, lines: Iterable[str], echo: Callable[[str], None],
              prompt: Callable[[], None] | None = None) -> int:
    """Talk until `/stop` or the end of input; returns the number of messages sent."""
    sent = 0
    buttons: list[dict[str, Any]] = []
    if prompt:
        prompt()
    for raw in lines:
        text = raw.strip()
        if text == STOP:
            break
        if text:
            reply = conversation.handle_message(_chosen_button(text, buttons))
            sent += 1
            buttons = []
            for item in reply.transcript:
                if isinstance(item, str):
                    echo(f"[note] {item}")
                    continue
                for line in format_message(item):
                    echo(line)
                buttons = list(item.get("buttons") or buttons)
        if prompt:
            prompt()
    return sent


def run_nlu_shell(model: Any, lines: Iterable[str], echo: Callable[[str], None]) -> int:
    """Print the parse result of each line as one JSON line; returns the lines parsed."""
    parsed = 0
    for raw in lines:
        text = raw.strip()
        if text == STOP:
            break
        if text:
            echo(json.dumps(model.parse(text), ensure_ascii=False))
            parsed += 1
    return parsed
