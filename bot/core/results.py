"""What a task result means for a job: the move it makes and when to read it next."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.api import errors
from bot.core.moves import Move, clip
from bot.core.schedule import Memory
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


def result_move(job: Job, result: TaskResult, now: datetime, settings: Settings) -> Move | None:
    """The move a task result makes; None for a job it no longer concerns."""
    if not job.state.is_active or job.task_id is None:
        return None
    move = _result_move(job, result, now, settings)
    memory = Memory.from_json(job.read_state)
    if memory.not_found:
        # The service knows the task after all: a later "not found" starts counting anew.
        memory = replace(memory, not_found=0)
        move = replace(move, changes={**move.changes, "read_state": memory.to_json()})
    return move


def _result_move(job: Job, result: TaskResult, now: datetime, settings: Settings) -> Move:
    video = result.video
    if result.succeeded and video is not None and video.video_url:
        expires = now + timedelta(seconds=video.video_url_ttl) if video.video_url_ttl else None
        return Move(
            to=JobState.SUCCEEDED,
            settle="commit",
            why="video made",
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
    # The service may report QUEUED again; the job never goes back from PROCESSING.
    queued = result.task.status.name == "QUEUED" and job.state is JobState.QUEUED
    delay = poll_delay(job, eta, progress, now, settings)
    return Move(
        to=JobState.QUEUED if queued else JobState.PROCESSING,
        changes={
            "progress": progress,
            "eta": eta,
            "attempts": 0,
            "next_poll_at": now + timedelta(seconds=delay),
        },
    )


def poll_delay(
    job: Job, eta: int | None, progress: int, now: datetime, settings: Settings
) -> float:
    """Seconds to the next read: about half the time left, within the configured bounds."""
    if job.off_peak:
        return settings.off_peak_poll_seconds
    if eta:
        guess = eta / 2
    elif 0 < progress < 100:
        elapsed = (now - job.created_at).total_seconds()
        guess = elapsed * (100 - progress) / progress / 2
    else:
        guess = (now - job.created_at).total_seconds() / 4
    return min(settings.poll_max_seconds, max(settings.poll_min_seconds, guess))
