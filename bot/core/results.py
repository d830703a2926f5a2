"""What a task result means for a job: the move it makes and when to read it next."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.api import errors
from bot.core.durations import service_seconds
from bot.core.moves import Move, clip
from bot.core.schedule import Learned, Memory, plan
from storage import Job, JobState

if TYPE_CHECKING:
    from bot.api.models import TaskResult
    from bot.settings import Settings


def failure_words(reason: str) -> str:
    """A task's failure `reason` in words a member understands."""
    known = errors.REASON_MEMBER_MESSAGES.get(reason.strip())
    if known:
        return known
    if reason.strip():
        return clip(f"The video service could not make this video: {reason.strip()}")
    return "The video service could not make this video."


def result_move(
    job: Job,
    result: TaskResult,
    now: datetime,
    settings: Settings,
    learned: Learned | None = None,
) -> Move | None:
    """The move a task result makes; None for a job it no longer concerns. A job still
    running gets its next read from the schedule (`bot.core.schedule`)."""
    if not job.state.is_active or job.task_id is None:
        return None
    elapsed = (now - job.created_at).total_seconds()
    video = result.video
    if result.succeeded and video is not None and video.video_url:
        expires = now + timedelta(seconds=video.video_url_ttl) if video.video_url_ttl else None
        return Move(
            to=JobState.SUCCEEDED,
            settle="commit",
            why="video made",
            learn=service_seconds(result.extra, elapsed),
            changes={
                "progress": 100,
                "eta": None,
                "result_url": video.video_url,
                "result_expires_at": expires,
                "failure_reason": None,
                "attempts": 0,
                "next_poll_at": now,  # due for delivery at once
            },
        )
    if result.succeeded or result.failed:
        words = (
            failure_words(result.task.reason)
            if result.failed
            else "The video service said the video was made but sent no video."
        )
        return Move(
            to=JobState.FAILED,
            settle="release",
            why=f"task failed: {result.task.reason}",
            changes={"failure_reason": words},
        )
    reported = result.task.progress_percent
    progress = job.progress if reported is None else max(job.progress, reported)
    eta = result.task.eta or None
    # A good read: a later "task not found" starts counting anew.
    memory = replace(Memory.from_json(job.read_state), not_found=0)
    if job.off_peak:
        floor, ceiling = settings.off_peak_poll_seconds, None
    else:
        floor, ceiling = None, settings.poll_max_seconds
    step = plan(
        elapsed,
        memory,
        eta=eta,
        progress=reported,
        learned=learned,
        floor=floor,
        ceiling=ceiling,
        scale=time_scale(settings),
    )
    read_at = step.read_at
    if job.off_peak:
        # Off-peak work is queued for hours: never read it more often than configured.
        read_at = max(read_at, elapsed + settings.off_peak_poll_seconds)
    # The service may report QUEUED again; the job never goes back from PROCESSING.
    queued = result.task.status.name == "QUEUED" and job.state is JobState.QUEUED
    expected = step.expected_end
    return Move(
        to=JobState.QUEUED if queued else JobState.PROCESSING,
        changes={
            "progress": progress,
            "eta": eta,
            "attempts": 0,
            "next_poll_at": job.created_at + timedelta(seconds=read_at),
            "read_priority": 0 if step.likely else 1,
            "expected_at": None
            if expected is None
            else job.created_at + timedelta(seconds=expected),
            "read_state": step.memory.to_json(),
        },
    )


def time_scale(settings: Settings) -> float:
    """How fast the schedule's clock runs: 1 at the default POLL_MIN_SECONDS of 3 s."""
    return settings.poll_min_seconds / 3.0
