"""Every option of every command is checked by the bot, not only by Discord's client.

Discord's client enforces an option's bounds, length and choices, but a request can skip
the client. `options_within_bounds` is added to every command as a check (by the bot at
start) and refuses, before the command runs, any value outside what the command declared:
numbers outside their range (or, without one, outside Discord's integer range), text too
short or too long, a value that is none of the offered choices.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

# Discord's own bounds of an INTEGER option (JavaScript's safe integers).
DISCORD_INT_MAX = 2**53 - 1


class OptionOutOfBounds(app_commands.CheckFailure):
    """An option's value outside what the command accepts; `message` says what is allowed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _number(value: float) -> str:
    return f"{value:,}"


def check_value(param: app_commands.Parameter, value: Any) -> None:
    """Raise `OptionOutOfBounds` for a value `param` does not accept."""
    name = f"`{param.display_name}`"
    option_type = param.type
    choices = [choice.value for choice in param.choices]
    if choices and value not in choices:
        raise OptionOutOfBounds(f"{name} must be one of: {', '.join(map(str, choices))}.")
    low, high = param.min_value, param.max_value
    if option_type is discord.AppCommandOptionType.string and isinstance(value, str):
        if low is not None and len(value) < low:
            raise OptionOutOfBounds(f"{name} must be at least {low} characters long.")
        if high is not None and len(value) > high:
            raise OptionOutOfBounds(f"{name} can be at most {high} characters long.")
        return
    if option_type in (discord.AppCommandOptionType.integer, discord.AppCommandOptionType.number):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise OptionOutOfBounds(f"{name} must be a number.")
        if option_type is discord.AppCommandOptionType.integer:
            low = -DISCORD_INT_MAX if low is None else low
            high = DISCORD_INT_MAX if high is None else high
        if (low is not None and value < low) or (high is not None and value > high):
            if low is not None and high is not None:
                raise OptionOutOfBounds(
                    f"{name} must be between {_number(low)} and {_number(high)}."
                )
            bound = (
                f"at least {_number(low)}" if low is not None else f"at most {_number(high or 0)}"
            )
            raise OptionOutOfBounds(f"{name} must be {bound}.")


async def options_within_bounds(interaction: discord.Interaction[Any]) -> bool:
    """A command check: every option given is one the command accepts."""
    command = interaction.command
    if not isinstance(command, app_commands.Command):
        return True
    namespace = interaction.namespace
    for param in command.parameters:
        if param.display_name in namespace:
            value = namespace[param.display_name]
            if value is not None:
                check_value(param, value)
    return True


def check_every_option(tree: app_commands.CommandTree[Any]) -> None:
    """Add the bounds check to every slash command of the tree (call once all are added)."""
    for command in tree.walk_commands():
        if (
            isinstance(command, app_commands.Command)
            and options_within_bounds not in command.checks
        ):
            command.add_check(options_within_bounds)
