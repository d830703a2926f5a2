"""Connecting the bot to Discord (or to a stand-in of it), and what a refused token means."""

from __future__ import annotations

import discord

from bot.settings import ConfigurationError, Settings


def point_discord_at(settings: Settings) -> None:
    """Use another REST base for Discord (a test double or a proxy), when configured."""
    if settings.discord_rest_base is not None:
        discord.http.Route.BASE = settings.discord_rest_base


# Gateway close codes that mean the shard settings do not fit this bot.
SHARDING_REQUIRED = 4011
INVALID_SHARD = 4010


async def connect(client: discord.Client, token: str, *, login_only: bool = False) -> None:
    """Log in and serve until the client closes (or only log in, with `login_only`).

    A token Discord refuses, or shard settings it refuses, are configuration errors, said
    in one line.
    """
    try:
        if login_only:
            await client.login(token)  # runs setup_hook, and nothing else
        else:
            await client.start(token)
    except discord.LoginFailure:
        raise ConfigurationError("DISCORD_TOKEN was refused by Discord") from None
    except discord.ConnectionClosed as closed:
        if closed.code == SHARDING_REQUIRED:
            raise ConfigurationError(
                f"SHARD_COUNT={client.shard_count} is too few: Discord requires more shards "
                f"for this bot (gateway closed shard {closed.shard_id} with 4011); leave "
                "SHARD_COUNT unset to get Discord's recommendation"
            ) from None
        if closed.code == INVALID_SHARD:
            raise ConfigurationError(
                f"SHARD_COUNT / SHARD_IDS: Discord refused shard {closed.shard_id} of "
                f"{client.shard_count} (gateway close 4010, invalid shard)"
            ) from None
        raise
