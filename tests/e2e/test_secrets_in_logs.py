"""The bot token never reaches a log record, whatever handler reads it.

An aiohttp error's repr carries the request's headers, `Authorization: Bot <token>`
included. The root handler's redaction filter is only a second line of defence: every
record the bot writes must be clean before any filter sees it.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import discord
import pytest
import yarl
from multidict import CIMultiDict, CIMultiDictProxy

from storage.models import JobState
from tests.e2e.conftest import World, image
from tests.e2e.helpers import finished


def leaky_error(token: str) -> aiohttp.ClientResponseError:
    url = yarl.URL("https://discord.test/api/v10/channels/1/messages")
    headers = CIMultiDictProxy(CIMultiDict({"Authorization": f"Bot {token}"}))
    info = aiohttp.RequestInfo(url, "POST", headers, url)
    return aiohttp.ClientResponseError(info, (), status=0, message="connection reset")


class Everything(logging.Handler):
    """A handler with no filter: what any extra handler of an operator would receive."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(record.getMessage())
        if record.exc_info:
            self.texts.append(logging.Formatter().formatException(record.exc_info))


@pytest.fixture
def handler() -> Any:
    catcher = Everything()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(catcher)
    root.setLevel(logging.DEBUG)
    yield catcher
    root.removeHandler(catcher)
    root.setLevel(old_level)


async def test_connection_errors_on_card_post_edit_and_upload_never_log_the_token(
    world: World, monkeypatch: pytest.MonkeyPatch, handler: Everything
) -> None:
    token = world.fake.token
    real_send = discord.abc.Messageable.send
    real_edit = discord.PartialMessage.edit
    calls = {"send": 0, "edit": 0}
    # Job 1: its card is posted (send 1), its first card edit breaks (edit 1), its first
    # upload breaks (send 2). Job 2: posting its card breaks (send 4, after job 1's video).
    broken = {"send": {2, 4}, "edit": {1}}

    def faulty(kind: str, real: Any) -> Any:
        async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            calls[kind] += 1
            if calls[kind] in broken[kind]:
                raise leaky_error(token)
            return await real(self, *args, **kwargs)

        return call

    monkeypatch.setattr(discord.abc.Messageable, "send", faulty("send", real_send))
    monkeypatch.setattr(discord.PartialMessage, "edit", faulty("edit", real_edit))
    for prompt in ("a cat", "a dog"):
        await world.slash(
            "video animate", options={"prompt": prompt}, attachments={"image": image()}
        )
        [job, *_] = await world.jobs()
        done = await finished(world, job, JobState.DELIVERED, timeout=15)
        assert done.delivered_message_id is not None
    assert calls["send"] >= 4 and calls["edit"] >= 1  # every fault was met
    assert handler.texts, "nothing was logged at all"
    assert [text for text in handler.texts if token in text] == []
