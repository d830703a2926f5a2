"""One reading of every way a request to Discord can fail."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import aiohttp
import discord
import pytest

from bot.discord.failures import classify


def http_error(status: int, code: int = 0, headers: dict[str, str] | None = None) -> Any:
    response = SimpleNamespace(status=status, reason="x", headers=headers or {})
    return discord.HTTPException(response, {"code": code, "message": "nope"})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "kind", "after"),
    [
        (http_error(413), "too_large", None),
        (http_error(400, code=40005), "too_large", None),
        (http_error(404, code=10003), "gone", None),
        (http_error(403, code=50013), "forbidden", None),
        (http_error(403, code=50007), "forbidden", None),
        (http_error(429, headers={"Retry-After": "7"}), "retry", 7.0),
        (http_error(503), "retry", None),
        (http_error(500, headers={"Retry-After": "2"}), "retry", 2.0),
        (aiohttp.ServerDisconnectedError(), "retry", None),
        (TimeoutError(), "retry", None),
        (ConnectionResetError(), "retry", None),
    ],
)
def test_classify(error: BaseException, kind: str, after: float | None) -> None:
    failure = classify(error)
    assert (failure.kind, failure.retry_after) == (kind, after)


def test_a_connection_error_is_described_without_its_repr() -> None:
    # An aiohttp error's repr can carry the request headers, the bot token among them.
    class Leaky(aiohttp.ClientError):
        def __repr__(self) -> str:
            return "Leaky(headers={'Authorization': 'Bot SECRET'})"

    failure = classify(Leaky("connection reset"))
    assert "SECRET" not in failure.detail and "connection reset" in failure.detail


def test_anything_else_is_not_a_discord_failure() -> None:
    with pytest.raises(TypeError):
        classify(ValueError("a bug"))
