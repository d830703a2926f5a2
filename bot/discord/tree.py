"""The command tree and the one error path every command and every button goes through.

A slash command runs inside `VideoCommandTree._call`; a button click runs inside
`VideoCommandTree.run_component` (buttons mix in `Guarded`). Both are counted by the tree's
`CommandGate`, so shutdown waits for them, and both end in `report`: a refusal or a
`UserFacingError` in its own words, a known Discord condition in a short sentence, anything
else as an incident id for the member and a traceback in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import discord
from discord import app_commands

from bot.core.refusals import Refusal
from bot.discord.options import OptionOutOfBounds
from bot.discord.wording import refusal_text

log = logging.getLogger(__name__)

RESTARTING = "I am restarting. Try again in a minute; nothing was charged."

Handler = Callable[[discord.Interaction[Any]], Awaitable[None]]


class UserFacingError(Exception):
    """An error whose message the member is shown verbatim (privately), with no traceback
    in the log. For conditions of the front end itself; the core raises refusals."""

    def __init__(self, message: str, *, code: str = "refused") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class CommandGate:
    """Counts running handlers; once closed, turns new ones away so shutdown can wait for
    those already running (discord.py runs each in a task it never waits for)."""

    def __init__(self) -> None:
        self.closing = False
        self._running = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.asynccontextmanager
    async def handling(self) -> AsyncIterator[None]:
        self._running += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._running -= 1
            if self._running == 0:
                self._idle.set()

    async def close(self, grace: float) -> None:
        """Take no more handlers, and wait up to `grace` seconds for the running ones."""
        self.closing = True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=grace)
        except TimeoutError:
            log.warning("%d command(s) still running at shutdown", self._running)


async def send_ephemeral(
    interaction: discord.Interaction[Any], message: str, **kwargs: Any
) -> None:
    """Answer an interaction privately, whether or not it was already deferred or answered."""
    kwargs.setdefault("allowed_mentions", discord.AllowedMentions.none())
    try:
        if interaction.response.is_done():
            await interaction.followup.send(message, ephemeral=True, **kwargs)
        else:
            await interaction.response.send_message(message, ephemeral=True, **kwargs)
    except discord.HTTPException:
        log.warning("could not answer interaction %s", interaction.id, exc_info=True)


class VideoCommandTree(app_commands.CommandTree[Any]):
    """One place that turns every error of every command and button into words."""

    def __init__(self, client: discord.Client, **options: Any) -> None:
        super().__init__(client, **options)
        self.gate = CommandGate()

    @staticmethod
    def of(interaction: discord.Interaction[Any]) -> VideoCommandTree:
        tree = getattr(interaction.client, "tree", None)
        if not isinstance(tree, VideoCommandTree):
            raise TypeError("the bot must be built with tree_cls=VideoCommandTree")
        return tree

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        """Once shutdown has begun, take no new commands (they would be cut off mid-way)."""
        if self.gate.closing:
            await send_ephemeral(interaction, RESTARTING)
            return False
        return True

    async def _call(self, interaction: discord.Interaction[Any]) -> None:
        async with self.gate.handling():
            await super()._call(interaction)

    async def on_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        await self.report(interaction, error)

    async def run_component(self, interaction: discord.Interaction[Any], handler: Handler) -> None:
        """Run a button's handler the way a command runs: gated, and errors reported."""
        if self.gate.closing:
            await send_ephemeral(interaction, RESTARTING)
            return
        async with self.gate.handling():
            try:
                await handler(interaction)
            except Exception as error:
                await self.report(interaction, error)

    async def report(self, interaction: discord.Interaction[Any], error: Exception) -> None:
        """Tell the member what went wrong."""
        await send_ephemeral(interaction, self.describe(interaction, error))

    def describe(self, interaction: discord.Interaction[Any], error: Exception) -> str:
        original = getattr(error, "original", error)
        if isinstance(original, Refusal):
            return refusal_text(original)
        if isinstance(error, OptionOutOfBounds):
            return f"{error.message} Nothing was changed."
        if isinstance(original, UserFacingError):
            return original.message
        if isinstance(error, app_commands.NoPrivateMessage):
            return "This command works only in a server."
        if isinstance(error, app_commands.CommandOnCooldown):
            return f"Slow down: try again in {error.retry_after:.0f} s."
        if isinstance(error, app_commands.BotMissingPermissions):
            missing = ", ".join(
                name.replace("_", " ").title() for name in error.missing_permissions
            )
            return f"I am missing a permission here: {missing}."
        if isinstance(error, app_commands.MissingPermissions):
            return "Only moderators (Manage Server) can use this command."
        if isinstance(error, app_commands.CheckFailure):
            return "You can't use this command here."
        if isinstance(error, app_commands.TransformerError):
            return f"`{error.value}` is not a valid value here."
        if isinstance(original, discord.Forbidden):
            return (
                "I am missing a permission in this channel "
                "(Send Messages, Embed Links, Attach Files)."
            )
        incident = secrets.token_hex(4)
        command = (
            f"/{interaction.command.qualified_name}"
            if interaction.command
            else f"component {cast('dict[str, Any]', interaction.data or {}).get('custom_id')}"
        )
        log.error(
            "incident %s in %s (guild %s, user %s)",
            incident,
            command,
            interaction.guild_id,
            interaction.user.id,
            exc_info=original,
        )
        return f"Something went wrong on my side (incident `{incident}`). Please try again later."


class Guarded:
    """Mix into a button: its clicks run `run` through the tree's one error path."""

    async def run(self, interaction: discord.Interaction[Any]) -> None:
        raise NotImplementedError

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await VideoCommandTree.of(interaction).run_component(interaction, self.run)
