"""The API key never ends up in an error's text or traceback, whatever the server sends."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import AsyncIterator

import pytest

from bot.api import VideoAPI, VideoAPIError
from bot.api.endpoints import Q3_PRO_I2V
from bot.api.models import Q3ImageToVideoRequest

SECRET = "sk-live-SUPERSECRET-0123456789"


@pytest.fixture
async def broken_server() -> AsyncIterator[str]:
    """Answers every request with a status line aiohttp cannot parse."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.write(b"HTTP/1.1 2x0 BROKEN\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


def text_of(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error) + str(error)


async def test_key_is_not_in_errors_from_a_broken_server(broken_server: str) -> None:
    request = Q3ImageToVideoRequest(images=["https://cdn.example/cat.png"])
    async with VideoAPI(broken_server, SECRET, max_retries=0) as api:
        for call in (
            api.task_result("abc"),
            api.submit(Q3_PRO_I2V, request),
            api.download(f"{broken_server}/video.mp4", max_bytes=1000),
        ):
            with pytest.raises(VideoAPIError) as caught:
                await call
            assert SECRET not in text_of(caught.value)
            assert "Bad status line" in str(caught.value) or "broke" in str(caught.value)
