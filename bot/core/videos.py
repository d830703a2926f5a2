"""Finished videos: a fresh link when the stored one has died, and the file itself.

Signed video links expire (the video does not): a new Task Result read hands out a new
link, which is stored on the job so history and delivery show the live one.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bot.api.errors import DownloadError, DownloadTooLargeError, VideoAPIError
from storage.models import CHARGED_STATES, JobState

if TYPE_CHECKING:
    from bot.api.client import Download
    from bot.api.models import TaskResult
    from bot.core.lifecycle import Lifecycle
    from storage import Job

log = logging.getLogger(__name__)

# What a dead signed link answers (expired, revoked, gone): worth one fresh link.
DEAD_LINK_STATUSES = frozenset({401, 403, 404, 410})
# A link this close to its expiry is treated as expired: it may die on the way.
EXPIRY_MARGIN = timedelta(seconds=60)


class VideoSource(Protocol):
    """What this needs of the API client (`bot.api.VideoAPI` is one)."""

    async def task_result(self, task_id: str) -> TaskResult: ...

    async def download(
        self, url: str, *, max_bytes: int, directory: Path | None = None
    ) -> Download: ...


def link_expired(job: Job, now: datetime) -> bool:
    if job.result_url is None:
        return False
    expires = job.result_expires_at
    return expires is not None and expires <= now + EXPIRY_MARGIN


class Videos:
    def __init__(
        self, api: VideoSource, lifecycle: Lifecycle, directory: Path | None = None
    ) -> None:
        self._api = api
        self._lifecycle = lifecycle
        self._directory = directory  # where downloads go (this process's scratch folder)

    async def renew_link(self, job: Job) -> Job:
        """Ask the video service for a fresh signed link and store it.

        Raises `VideoAPIError` (`TaskNotFoundError`: the service no longer has the video).
        """
        if job.task_id is None:
            return job
        renewed = await self._lifecycle.renew_result_link(
            job.id, await self._api.task_result(job.task_id)
        )
        log.info("job %s: video link renewed", job.id)
        return renewed

    async def live_links(self, jobs: list[Job], now: datetime, *, reads: int = 3) -> list[Job]:
        """The jobs, with fresh links for finished videos whose link has expired.

        Each renewal is one Task Result read (the API's budget is small), so at most
        `reads` are made: videos that were never posted first, then the newest. A renewal
        that fails leaves the job as it was.
        """
        expired = [j for j in jobs if j.state in CHARGED_STATES and link_expired(j, now)]
        expired.sort(key=lambda j: (j.state is not JobState.UNDELIVERABLE, -j.id))
        renewed: dict[int, Job] = {}
        for job in expired[:reads]:
            try:
                renewed[job.id] = await self.renew_link(job)
            except VideoAPIError as error:
                log.info("job %s: video link not renewed: %s", job.id, error)
        return [renewed.get(job.id, job) for job in jobs]

    async def fetch(self, job: Job, max_bytes: int, now: datetime) -> tuple[Job, Download | None]:
        """The job (with the link that worked) and its video as a temporary file that the
        caller deletes; None when the video is larger than `max_bytes`.

        A dead link is renewed once, whether it was known to have expired or only found
        dead here (a link whose expiry the service did not state, TTL "0").
        Raises `DownloadError`, or `VideoAPIError` when renewing the link fails.
        """
        renewed = link_expired(job, now)
        if renewed:
            job = await self.renew_link(job)
        try:
            return job, await self._download(job, max_bytes)
        except DownloadError as error:
            if renewed or error.status not in DEAD_LINK_STATUSES:
                raise
            log.info("job %s: the video link answered %s; renewing it", job.id, error.status)
        job = await self.renew_link(job)
        return job, await self._download(job, max_bytes)

    async def _download(self, job: Job, max_bytes: int) -> Download | None:
        try:
            return await self._api.download(
                job.result_url or "", max_bytes=max_bytes, directory=self._directory
            )
        except DownloadTooLargeError:
            return None
