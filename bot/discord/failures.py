"""One classification of everything that can go wrong when the bot talks to Discord.

Delivery, card edits and DMs all ask `classify` what a failure means, instead of each
writing its own 429 / 5xx / 403 / 404 / dropped-connection branches:

- `retry`: try again later, not sooner than `retry_after` when Discord said so (429 with
  Retry-After, 5xx, a connection that broke without an answer: the request may have landed,
  so a retry must be safe to repeat);
- `too_large`: the file is over the channel's upload limit (413 / code 40005);
- `gone`: the channel or message no longer exists (404);
- `forbidden`: the bot may not do this here (403: missing access, DMs closed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import aiohttp
import discord

from bot.api.client import describe, parse_retry_after

FailureKind = Literal["retry", "too_large", "gone", "forbidden"]

# A request to Discord that broke off without an answer: it may or may not have landed.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, OSError, TimeoutError)
# Everything `classify` knows; anything else is a bug and is left to propagate.
DISCORD_FAILURES: tuple[type[BaseException], ...] = (
    discord.HTTPException,
    discord.RateLimited,
    *CONNECTION_ERRORS,
)
TOO_LARGE_CODE = 40005


@dataclass(frozen=True, slots=True)
class Failure:
    kind: FailureKind
    detail: str  # for logs: status and code, or the connection error's class and message
    retry_after: float | None = None
    # The request may have done its work though no answer said so (a connection that
    # broke, a 5xx): a post may be in the channel. Never for a 4xx, which did nothing.
    maybe_landed: bool = False


def classify(error: BaseException) -> Failure:
    """What a failed Discord request means (see the module docstring)."""
    if isinstance(error, discord.RateLimited):
        return Failure("retry", f"rate limited for {error.retry_after:.0f} s", error.retry_after)
    if isinstance(error, discord.HTTPException):
        detail = f"Discord {error.status}/{error.code}"
        if error.status == 413 or error.code == TOO_LARGE_CODE:
            return Failure("too_large", detail)
        if error.status == 404:
            return Failure("gone", detail)
        if error.status == 403:
            return Failure("forbidden", detail)
        headers = getattr(error.response, "headers", None) or {}
        after = parse_retry_after(headers.get("Retry-After"))
        return Failure("retry", detail, after, maybe_landed=error.status >= 500)
    if isinstance(error, CONNECTION_ERRORS):
        # Never the error's repr: an aiohttp error's repr carries the request headers,
        # and with them the bot token.
        return Failure("retry", f"no answer from Discord ({describe(error)})", maybe_landed=True)
    raise TypeError(f"not a Discord failure: {type(error).__name__}") from error
