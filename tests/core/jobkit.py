"""Helpers for the core's tests: a fake API, request builders, task results."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.api import errors
from bot.api.models import TaskResult
from bot.core.refusals import Refusal
from bot.core.submitting import SubmitRequest
from bot.discord.wording import refusal_text
from bot.settings import Settings
from storage import InputRef

GUILD = 1
CHANNEL = 5
USER = 10
MOD = 99
IMAGE = "https://cdn.example/attachments/1/2/cat.png"


class FakeAPI:
    """Stands in for `VideoAPI.submit`: returns task ids or raises the queued errors."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.webhooks: list[str | None] = []  # the webhook address of each call
        self.failures: list[BaseException] = []
        self.delay = 0.0
        self.hold: asyncio.Event | None = None  # set: calls wait for it before answering
        self._next = 0

    async def submit(self, endpoint: Any, request: Any, *, webhook_url: str | None = None) -> str:
        self.calls.append((endpoint.name, request.to_body()))
        self.webhooks.append(webhook_url)
        if self.hold is not None:
            await self.hold.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        else:
            await asyncio.sleep(0)  # let other coroutines run, as a real request would
        if self.failures:
            raise self.failures.pop(0)
        self._next += 1
        return f"task-{self._next}"


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "discord_token": "x",
        "novita_simulate": True,
        "default_allowance": 100,
        "default_period": "week",
        "default_max_concurrent_jobs": 2,
        "poll_min_seconds": 3.0,
        "poll_max_seconds": 60.0,
        "off_peak_poll_seconds": 300.0,
        "job_timeout_minutes": 180.0,
        "off_peak_job_timeout_minutes": 3000.0,
        "submit_timeout_seconds": 90.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def params(
    *, duration: int = 5, resolution: str = "720p", off_peak: bool = False, **extra: Any
) -> dict[str, Any]:
    """A valid vidu-q3-pro-i2v request: 6 credits a second at 720p (30 for 5 s)."""
    body: dict[str, Any] = {
        "images": [IMAGE],
        "prompt": "a cat surfing a wave",
        "duration": duration,
        "resolution": resolution,
    }
    if off_peak:
        body["off_peak"] = True
    body.update(extra)
    return body


def request(
    *,
    guild: int = GUILD,
    user: int = USER,
    channel: int = CHANNEL,
    model: str = "vidu-q3-pro-i2v",
    reroll_of: int | None = None,
    role_ids: tuple[int, ...] = (),
    **kwargs: Any,
) -> SubmitRequest:
    return SubmitRequest(
        guild_id=guild,
        channel_id=channel,
        user_id=user,
        model=model,
        params=params(**kwargs),
        inputs=[InputRef(kind="image", url=IMAGE, filename="cat.png", content_type="image/png")],
        reroll_of=reroll_of,
        role_ids=role_ids,
    )


def result(status: str, **task: Any) -> TaskResult:
    body: dict[str, Any] = {"task": {"task_id": "t", "status": f"TASK_STATUS_{status}", **task}}
    if status == "SUCCEED":
        body["videos"] = [
            {"video_url": "https://video.example/v.mp4?sig=1", "video_url_ttl": "3600"}
        ]
    return TaskResult.model_validate(body)


def bad_request(reason: str = "ILLEGAL_PROMPT") -> errors.APIStatusError:
    return errors.error_from_response(
        400,
        f'{{"code": 400, "reason": "{reason}", "message": "no"}}'.encode(),
        method="POST",
        path="/v3/async/vidu-q3-pro-i2v",
    )


def outcome_unknown() -> errors.SubmissionOutcomeUnknown:
    return errors.SubmissionOutcomeUnknown(
        "timed out", cause=errors.APITimeoutError("no answer in 90 s")
    )


def words(refusal: Refusal) -> str:
    """What a member on Discord reads for a refusal (the front end's wording)."""
    return refusal_text(refusal)
