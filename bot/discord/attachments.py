"""Discord attachments as the core sees them, and fresh links to them for a re-roll."""

from __future__ import annotations

import logging
from typing import Literal

import aiohttp
import discord

from bot.core.inputs import AttachedFile
from bot.core.refusals import InputsGone
from storage.models import InputRef, Job

log = logging.getLogger(__name__)

LINK_CHECK_TIMEOUT = aiohttp.ClientTimeout(total=15)


def attached(option: str, attachment: discord.Attachment) -> AttachedFile:
    return AttachedFile(
        option=option,
        filename=attachment.filename,
        url=attachment.url,
        content_type=attachment.content_type,
        size=attachment.size,
        width=attachment.width,
        height=attachment.height,
        attachment_id=attachment.id,
    )


def input_ref(
    kind: Literal["image", "audio"], file: AttachedFile, subject: int | None = None
) -> InputRef:
    return InputRef(
        kind=kind,
        url=file.url,
        filename=file.filename,
        content_type=file.content_type or "",
        size=file.size,
        width=file.width,
        height=file.height,
        subject=subject,
        attachment_id=file.attachment_id,
    )


class LinkRefresher:
    """Working links for a job's inputs, keyed by the stored ones (the core's re-roll asks).

    Discord signs attachment links for about a day; `refresh-urls` re-signs them for as
    long as the file exists. A link that still does not answer means the input is gone.
    """

    def __init__(self, http: discord.http.HTTPClient) -> None:
        self._http = http

    async def __call__(self, job: Job) -> dict[str, str]:
        stored = [ref.url for ref in job.inputs]
        route = discord.http.Route("POST", "/attachments/refresh-urls")
        try:
            answer = await self._http.request(route, json={"attachment_urls": stored})
            refreshed = {
                item["original"]: item["refreshed"]
                for item in answer.get("refreshed_urls", [])
                if item.get("refreshed")
            }
        except discord.HTTPException as error:
            log.info("job %s: refresh-urls failed (%s); trying stored links", job.id, error.status)
            refreshed = {}
        fresh = {url: refreshed.get(url, url) for url in stored}
        async with aiohttp.ClientSession(timeout=LINK_CHECK_TIMEOUT) as session:
            for url in fresh.values():
                if not await answers(session, url):
                    raise InputsGone(job.id)
        return fresh


async def answers(session: aiohttp.ClientSession, url: str) -> bool:
    """Whether a link still serves its file (asks for one byte; the body is not read)."""
    try:
        async with session.get(url, headers={"Range": "bytes=0-0"}) as response:
            return response.status < 400
    except (aiohttp.ClientError, TimeoutError):
        return False
