"""The bot class: the core wired to Discord.

`VideoBot` is handed everything it uses by the composition root (`bot.app`): the settings,
the core's services, the database's meta table (for the command-tree hash) and, before it
starts, the poller. It loads the cogs, recovers and starts the poller, keeps the command
tree in sync, and shuts down in order.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import TYPE_CHECKING, Any, Protocol

import discord
import yarl
from discord.ext import commands
from discord.gateway import DiscordWebSocket

from bot.discord.options import check_every_option
from bot.discord.tree import VideoCommandTree

if TYPE_CHECKING:
    from bot.core import Core
    from bot.core.delivery import Delivery
    from bot.core.poller import Poller
    from bot.core.videos import Videos
    from bot.settings import Settings

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.video", "cogs.quota", "cogs.server_settings")
SHUTDOWN_GRACE_SECONDS = 20.0  # how long running commands may take to finish at shutdown
COMMAND_HASH_KEY = "command_tree_hash"


class Meta(Protocol):
    """Where the bot keeps small facts between starts (`storage.Database` is one)."""

    async def get_meta(self, key: str) -> str | None: ...

    async def set_meta(self, key: str, value: str) -> None: ...


class VideoBot(commands.AutoShardedBot):
    """The bot: Discord wiring around the platform-neutral core.

    Always auto-sharded: with `SHARD_COUNT` / `SHARD_IDS` it serves those shards (other
    processes serve the rest); without them discord.py asks Discord how many shards the bot
    needs (`GET /gateway/bot`) and serves them all, so one process serves every guild.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        core: Core,
        videos: Videos,
        meta: Meta,
        force_sync: bool = False,
        sync_only: bool = False,
    ) -> None:
        intents = discord.Intents.none()
        intents.guilds = True  # channels, permissions and upload limits of the guilds we serve
        # Some of the shards, when this process shares the bot with others (the settings
        # checked them); None: every shard.
        shards: dict[str, Any] = {}
        if settings.shard_ids is not None:
            shards["shard_ids"] = list(settings.shard_ids)
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            tree_cls=VideoCommandTree,
            help_command=None,
            # Nothing the bot posts pings anyone unless a send names the requester explicitly.
            allowed_mentions=discord.AllowedMentions.none(),
            shard_count=settings.shard_count,
            **shards,
        )
        self.settings = settings
        self.core = core
        self.videos = videos
        self.meta = meta
        self.force_sync = force_sync
        self.sync_only = sync_only
        self.poller: Poller | None = None
        self.delivery: Delivery | None = None
        # What each guild accepts per file, as its latest interaction said (boosts change it).
        self.upload_limits: dict[int, int] = {}
        self._poller_task: asyncio.Task[None] | None = None

    @property
    def command_tree(self) -> VideoCommandTree:
        assert isinstance(self.tree, VideoCommandTree)
        return self.tree

    @property
    def closing(self) -> bool:
        return self.command_tree.gate.closing

    async def setup_hook(self) -> None:
        if self.settings.discord_rest_base is not None and self.shard_count is not None:
            await self._use_gateway_of(self.settings.discord_rest_base)
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        check_every_option(self.tree)
        if self.sync_only:
            await self.sync_commands(force=True)
            return
        if self.poller is not None:
            await self.poller.recover()
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
        """With a non-default REST base and a set SHARD_COUNT, connect to the gateway that
        base names.

        discord.py asks `GET /gateway/bot` (for the shard count and the gateway URL) only
        when it is not given a shard count; given one, it goes to Discord's public gateway,
        which would split a proxied or test bot across two Discords.
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
        if not force and await self.meta.get_meta(COMMAND_HASH_KEY) == digest:
            log.info("command tree unchanged; not syncing")
            return False
        synced = await self.tree.sync(guild=guild)
        await self.meta.set_meta(COMMAND_HASH_KEY, digest)
        log.info(
            "synced %d command(s) %s", len(synced), f"to guild {guild.id}" if guild else "globally"
        )
        return True

    async def close(self) -> None:
        # Order matters: stop taking commands, let running ones finish (a submission in
        # flight records its task id), stop the poller (it ends its current database write),
        # and only then disconnect; the composition root closes the API session and the
        # database after.
        await self.command_tree.gate.close(SHUTDOWN_GRACE_SECONDS)
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
