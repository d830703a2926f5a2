"""How the fake says no: ``DiscordError`` and the raw JSON responses discord.py must parse.

A route handler raises :class:`DiscordError` (or :func:`form_error` for a 400 / 50035 with
Discord's nested ``errors`` tree); the HTTP layer turns it into ``{"message", "code"}``.
The helpers here also build every JSON answer, with the rate-limit headers Discord sends.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from . import payloads
from .models import ERROR_CODES, RecordedRequest


class DiscordError(Exception):
    """Raised by a route handler; becomes Discord's ``{"message", "code"}`` error body."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str | None = None,
        errors: dict[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message or ERROR_CODES.get(code, (status, f"{status}"))[1]
        self.errors = errors
        super().__init__(f"{status} {code} {self.message}")


def form_error(path: str, code: str, message: str) -> DiscordError:
    """400 / 50035 "Invalid Form Body" naming the offending field, e.g. ``embeds.0.title``."""
    return DiscordError(400, 50035, "Invalid Form Body", payloads.form_error(path, code, message))


class Dropped(Exception):
    """A fault asked the HTTP layer to hang up on the client instead of answering."""


def json_response(data: Any, status: int, headers: dict[str, str]) -> web.Response:
    # discord.py parses a body as JSON only when Content-Type is exactly "application/json";
    # aiohttp's json_response would append "; charset=utf-8" and turn every answer into a str.
    body = json.dumps(data, separators=(",", ":")).encode()
    return web.Response(
        body=body, status=status, headers={**headers, "Content-Type": "application/json"}
    )


def ratelimit_headers(extra: dict[str, str] | None = None, bucket: str = "fake") -> dict[str, str]:
    """The headers of a relaxed bucket; ``Via`` tells discord.py a 429 is not a Cloudflare ban."""
    headers = {
        "X-RateLimit-Limit": "50",
        "X-RateLimit-Remaining": "49",
        "X-RateLimit-Reset": f"{time.time() + 60:.3f}",
        "X-RateLimit-Reset-After": "60.000",
        "X-RateLimit-Bucket": bucket,
        "Via": "1.1 google",
    }
    if extra:
        headers.update(extra)
    return headers


def json_reply(
    rec: RecordedRequest, data: Any, status: int = 200, bucket: str = "fake"
) -> web.Response:
    """A handler's result as a response (``None`` → 204), remembered on the recorded request."""
    rec.response = data
    if data is None:
        return web.Response(status=204, headers=ratelimit_headers(bucket=bucket))
    return json_response(data, status, ratelimit_headers(bucket=bucket))


def error_response(rec: RecordedRequest, err: DiscordError) -> web.Response:
    body = payloads.error(err.code, err.message, err.errors)
    rec.response = body
    return json_response(body, err.status, ratelimit_headers())
