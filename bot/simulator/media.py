"""The simulator's videos: the sample MP4, padding, signed URLs and the route serving them.

A finished task's `video_url` points back at the simulator (`/sim-media/<task>.mp4`) with
an expiry and an HMAC signature, like a storage bucket's signed link: a wrong signature,
an unknown task or a past expiry gets the bucket's 403 XML, not the video.
"""

from __future__ import annotations

import hmac
import struct
import time
from functools import cache
from importlib import resources
from typing import Any

from aiohttp import web

from bot.simulator.tasks import STATE_KEY, SimTask, SimulatorState

MEDIA_PREFIX = "/sim-media/"
CHUNK_BYTES = 64 * 1024
ACCESS_DENIED = b"<?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>"


@cache
def sample_mp4() -> bytes:
    """A real, playable one-second 64×64 H.264 MP4 (1.5 kB) shipped with the package."""
    return resources.files("bot.simulator").joinpath("assets/sample.mp4").read_bytes()


def video_of_size(size: int | None) -> bytes:
    """The sample MP4, padded with a trailing `free` box (players skip it) to `size` bytes."""
    video = sample_mp4()
    padding = (size or 0) - len(video)
    if padding < 8:  # a box needs 8 bytes of header; smaller sizes get the bare sample
        return video
    return video + struct.pack(">I4s", padding, b"free") + bytes(padding - 8)


def video_url(origin: str, task_id: str, expires: int, signature: str) -> str:
    """The URL of a task's video on the simulator at `origin` (scheme://host:port)."""
    return f"{origin}{MEDIA_PREFIX}{task_id}.mp4?expires={expires}&signature={signature}"


def video_output(state: SimulatorState, task: SimTask, origin: str) -> dict[str, Any]:
    """The `videos[]` entry of a finished task: a signed URL that expires after the TTL."""
    ttl = state.config.video_ttl
    seconds = int(ttl) if str(ttl).strip().lstrip("-").isdigit() else 0
    # Signed afresh at every read, as a storage bucket signs each link it hands out: a
    # later read renews an expired link. TTL "0" means no stated expiry: it keeps working.
    expires = int(time.time()) + seconds if seconds > 0 else 0
    url = video_url(origin, task.task_id, expires, state.sign(task.task_id, expires))
    output: dict[str, Any] = {"video_url": url, "video_url_ttl": ttl, "video_type": "mp4"}
    if state.config.unknown_fields:
        output["cover_url"] = ""
    return output


async def media(request: web.Request) -> web.StreamResponse:
    """`GET /sim-media/<task>.mp4?expires=…&signature=…`: the video, or 403 like a bucket."""
    state = request.app[STATE_KEY]
    task_id = request.match_info["task_id"]
    try:
        expires = int(request.query.get("expires", ""))
    except ValueError:
        expires = -1
    signature = request.query.get("signature", "")
    task = state.tasks.get(task_id)
    valid = (
        task is not None
        and expires >= 0
        and hmac.compare_digest(signature, state.sign(task_id, expires))
    )
    if not valid or (expires and time.time() > expires):
        return web.Response(status=403, body=ACCESS_DENIED, content_type="application/xml")
    video = video_of_size(state.config.video_bytes)
    if not state.config.chunked_video:
        return web.Response(body=video, content_type="video/mp4")
    response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for start in range(0, len(video), CHUNK_BYTES):
        await response.write(video[start : start + CHUNK_BYTES])
    await response.write_eof()
    return response
