"""Options that take several values after one flag, as Rasa's do (`--data a b`).

Rasa's argparse options use `nargs="+"`; click has no such option, only one value per
occurrence (`--data a --data b`). Rather than reach into click's private parser, the
commands here rewrite their arguments before click parses them: the values after a
`MultiValueOption` flag, up to the next option, become one occurrence each. Both
spellings then work, and click's parsing, help and error messages stay click's own.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import click


class MultiValueOption(click.Option):
    """An option that takes one or more values after its flag (and may be repeated)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["multiple"] = True
        kwargs.setdefault("metavar", "PATH...")
        super().__init__(*args, **kwargs)


def _is_value(token: str) -> bool:
    return token == "-" or not token.startswith("-")


def spread_values(args: Sequence[str], multi: Collection[str], valued: Collection[str],
                  commands: Collection[str]) -> list[str]:
    """`--data a b` as `--data a --data b`: the tokens after a `multi` flag, up to the next
    option (or, in a group, the next subcommand name), each get the flag.

    The first token after a flag is its value whatever it looks like, as click takes it;
    `valued` flags take one value, which is skipped; `--` and a subcommand end the
    rewriting (what follows is another command's to parse).
    """
    result: list[str] = []
    index = 0
    while index < len(args):
        token = args[index]
        if token == "--" or token in commands:
            result.extend(args[index:])
            break
        result.append(token)
        index += 1
        if index >= len(args):
            break
        if token in multi:
            result.append(args[index])
            index += 1
            while index < len(args) and _is_value(args[index]) and args[index] not in commands:
                result.extend([token, args[index]])
                index += 1
        elif token in valued:
            result.append(args[index])
            index += 1
    return result


def _flags(params: Sequence[click.Parameter]) -> tuple[set[str], set[str]]:
    """The flags of multi-value options, and those of other options that take a value."""
    multi: set[str] = set()
    valued: set[str] = set()
    for param in params:
        if not isinstance(param, click.Option):
            continue
        if isinstance(param, MultiValueOption):
            multi.update(param.opts)
        elif not param.is_flag and not param.count and not getattr(param, "_flag_needs_value", False):
            # (an option whose value is optional, `--finetune [PATH]`, takes the next token
            # only when it is no option, so that token is looked at like any other)
            valued.update(param.opts)
    return multi, valued


class _SpreadsValues:
    """Mixin for click commands: spread multi-value options before click parses."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        multi, valued = _flags(self.get_params(ctx))  # type: ignore[attr-defined]
        if multi:
            args = spread_values(args, multi, valued, getattr(self, "commands", {}))
        return super().parse_args(ctx, args)  # type: ignore[misc]


class MultiValueCommand(_SpreadsValues, click.Command):
    """A command whose `MultiValueOption`s take several values after one flag."""


class MultiValueGroup(_SpreadsValues, click.Group):
    """A group whose options, subcommands and subgroups all spread multi-value options."""

    command_class = MultiValueCommand
    group_class = type  # subgroups are MultiValueGroups too
