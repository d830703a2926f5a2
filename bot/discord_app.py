"""The Discord side of the composition root: the bot class and its command tree.

`VideoBot` is handed everything it needs (settings, database, job service, API client) by
`bot.runner`; it only wires them to Discord: loads the cogs, resumes jobs, starts the poller
and keeps the command tree in sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast

import discord
import yarl
from discord import app_commands
from discord.ext import commands
from discord.gateway import DiscordWebSocket

from bot.errors import UserFacingError

if TYPE_CHECKING:
    from bot.api import VideoAPI
    from bot.jobs import JobService
    from bot.poller import Poller
    from bot.settings import Settings
    from storage import Database

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.video", "cogs.quota", "cogs.server_settings")
SHUTDOWN_GRACE_SECONDS = 20.0  # how long running commands may take to finish at shutdown
RESTARTING = "I am restarting. Try again in a minute; nothing was charged."
COMMAND_HASH_KEY = "command_tree_hash"


class VideoCommandTree(app_commands.CommandTree["VideoBot"]):
    """One place that turns every error of every command into words for the member."""

    async def interaction_check(self, interaction: discord.Interaction[VideoBot], /) -> bool:
        """Once shutdown has begun, take no new commands (they would be cut off mid-way)."""
        if interaction.client.closing:
            await send_ephemeral(interaction, RESTARTING)
            return False
        return True

    async def _call(self, interaction: discord.Interaction[VideoBot]) -> None:
        # discord.py runs each command in a task of its own and never waits for it; counting
        # them lets shutdown wait until running commands have finished what they started.
        async with interaction.client.handling():
            await super()._call(interaction)

    async def on_error(
        self, interaction: discord.Interaction[VideoBot], error: app_commands.AppCommandError
    ) -> None:
        await self.report(interaction, error)

    async def report(self, interaction: discord.Interaction[VideoBot], error: Exception) -> None:
        """Tell the member what went wrong; used by commands and buttons alike."""
        await send_ephemeral(interaction, self.describe(interaction, error))

    def describe(self, interaction: discord.Interaction[VideoBot], error: Exception) -> str:
        original = getattr(error, "original", error)
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
            return "I am missing a permission in this channel (Send Messages, Embed Links, Attach Files)."
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


async def report_error(interaction: discord.Interaction[VideoBot], error: Exception) -> None:
    """Tell the member what went wrong in a button or other component, as the tree would."""
    tree = interaction.client.tree
    if isinstance(tree, VideoCommandTree):
        await tree.report(interaction, error)
    else:  # pragma: no cover - the bot always builds a VideoCommandTree
        log.exception("unhandled error in a component", exc_info=error)


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


class VideoBot(commands.Bot):
    """The bot: Discord wiring around the platform-neutral job service."""

    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        api: VideoAPI,
        service: JobService,
        force_sync: bool = False,
        sync_only: bool = False,
    ) -> None:
        intents = discord.Intents.none()
        intents.guilds = True  # channels, permissions and upload limits of the guilds we serve
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            tree_cls=VideoCommandTree,
            help_command=None,
            # Nothing the bot posts pings anyone unless a send names the requester explicitly.
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.settings = settings
        self.db = db
        self.api = api
        self.service = service
        self.force_sync = force_sync
        self.sync_only = sync_only
        self.poller: Poller | None = None
        self.closing = False
        self._commands_running = 0
        self._commands_idle = asyncio.Event()
        self._commands_idle.set()
        # What each guild accepts per file, as its latest interaction said (boosts change it).
        self.upload_limits: dict[int, int] = {}
        self._poller_task: asyncio.Task[None] | None = None

    async def setup_hook(self) -> None:
        from bot.delivery_discord import DiscordDelivery
        from bot.poller import Poller

        if self.settings.discord_rest_base is not None:
            await self._use_gateway_of(self.settings.discord_rest_base)
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if self.sync_only:
            await self.sync_commands(force=True)
            return

        recovery = await self.service.recover()
        delivery = DiscordDelivery(self)
        self.poller = Poller(self.service, self.api, delivery, self.settings)
        for job in recovery.lost:
            self.poller.announce(job)  # its card says the credits came back
        self._start_poller()
        await self.sync_commands(force=self.force_sync)

    def _start_poller(self) -> None:
        assert self.poller is not None
        self._poller_task = asyncio.create_task(self.poller.run_forever(), name="job-poller")
        self._poller_task.add_done_callback(self._poller_ended)

    def _poller_ended(self, task: asyncio.Task[None]) -> None:
        """The poller only ends when the bot closes; if it ever ends otherwise, say so loudly
        and start it again, so jobs never silently stop moving."""
        if self.is_closed() or (self.poller is not None and self.poller.stopping):
            return
        error = None if task.cancelled() else task.exception()
        log.critical("the job poller stopped unexpectedly; restarting it", exc_info=error)
        self._start_poller()

    async def _use_gateway_of(self, rest_base: str) -> None:
        """With a non-default REST base, connect to the gateway that base names.

        discord.py asks `GET /gateway/bot` only when sharding; otherwise it goes to Discord's
        public gateway, which would split a proxied or test bot across two Discords.
        """
        try:
            _shards, url, _limits = await self.http.get_bot_gateway()
        except (discord.GatewayNotFound, discord.HTTPException):
            log.warning("REST base %s names no gateway; using Discord's default", rest_base)
            return
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url.rstrip("/") + "/")
        log.info("REST base %s: using gateway %s", rest_base, url)

    async def sync_commands(self, *, force: bool = False) -> bool:
        """Sync the command tree when its payload changed since the last sync (or when forced).

        Discord rate-limits syncs hard, so a start with unchanged commands must not sync.
        """
        guild = discord.Object(self.settings.dev_guild_id) if self.settings.dev_guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands(guild=guild)]
        digest = hashlib.sha256(
            json.dumps(
                [self.application_id, guild.id if guild else None, payload], sort_keys=True
            ).encode()
        ).hexdigest()
        if not force and await self.db.get_meta(COMMAND_HASH_KEY) == digest:
            log.info("command tree unchanged; not syncing")
            return False
        synced = await self.tree.sync(guild=guild)
        await self.db.set_meta(COMMAND_HASH_KEY, digest)
        log.info(
            "synced %d command(s) %s", len(synced), f"to guild {guild.id}" if guild else "globally"
        )
        return True

    @contextlib.asynccontextmanager
    async def handling(self) -> AsyncIterator[None]:
        """Mark a command or button handler as running (shutdown waits for it)."""
        self._commands_running += 1
        self._commands_idle.clear()
        try:
            yield
        finally:
            self._commands_running -= 1
            if self._commands_running == 0:
                self._commands_idle.set()

    async def close(self) -> None:
        # Order matters: stop taking commands, let running ones finish (a submission in
        # flight records its task id), stop the poller (it ends its current database write),
        # and only then disconnect; the runner closes the API session and database after.
        self.closing = True
        try:
            await asyncio.wait_for(self._commands_idle.wait(), timeout=SHUTDOWN_GRACE_SECONDS)
        except TimeoutError:
            log.warning("%d command(s) still running at shutdown", self._commands_running)
        if self.poller is not None:
            self.poller.stop()
        if self._poller_task is not None:
            try:
                await asyncio.wait_for(self._poller_task, timeout=15)
            except TimeoutError:
                log.warning("the poller did not stop within 15 s; cancelled it")
            except Exception:
                log.exception("the poller ended with an error")
        await super().close()
