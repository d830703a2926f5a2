"""Connecting the bot to Discord (or to a stand-in of it), and what a refused token means."""

from __future__ import annotations

import discord

from bot.settings import ConfigurationError, Settings


def point_discord_at(settings: Settings) -> None:
    """Use another REST base for Discord (a test double or a proxy), when configured."""
    if settings.discord_rest_base is not None:
        discord.http.Route.BASE = settings.discord_rest_base


async def connect(client: discord.Client, token: str, *, login_only: bool = False) -> None:
    """Log in and serve until the client closes (or only log in, with `login_only`).

    A token Discord refuses is a configuration error, said in one line.
    """
    try:
        if login_only:
            await client.login(token)  # runs setup_hook, and nothing else
        else:
            await client.start(token)
    except discord.LoginFailure:
        raise ConfigurationError("DISCORD_TOKEN was refused by Discord") from None
