"""The vocabulary of job changes: the state machine, and `Move`, one step of one job.

A move is chosen by a small pure function from the job as it is stored now (see
`bot.core.results` and `bot.core.lifecycle`) and applied by `Lifecycle.step`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from storage import Job, JobState

FAILURE_REASON_MAX_CHARS = 300
# A submission whose outcome is unknown is given up this long after its submit timeout, in
# case it is not in flight here (a second process, a crashed coroutine).
UNKNOWN_GRACE = timedelta(seconds=60)

# The transitions a job may make; anything else is a bug and is refused loudly.
NEXT_STATES: dict[JobState, frozenset[JobState]] = {
    # SUBMITTING → PROCESSING/SUCCEEDED/FAILED only for a job that somehow has a task id
    # without having been QUEUED (recovery normally queues those first).
    JobState.SUBMITTING: frozenset(
        {
            JobState.QUEUED,
            JobState.PROCESSING,
            JobState.SUCCEEDED,
            JobState.FAILED,
            JobState.REJECTED,
            JobState.LOST,
            JobState.EXPIRED,
        }
    ),
    JobState.QUEUED: frozenset(
        {JobState.PROCESSING, JobState.SUCCEEDED, JobState.FAILED, JobState.EXPIRED}
    ),
    JobState.PROCESSING: frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.EXPIRED}),
    JobState.SUCCEEDED: frozenset({JobState.DELIVERED, JobState.UNDELIVERABLE}),
}


@dataclass(frozen=True, slots=True)
class Move:
    """One step of a job: its next state (None: it stays), how its holds settle (with the
    ledger reason), the columns that change, and a duration to learn from it."""

    to: JobState | None = None
    settle: Literal["commit", "release"] | None = None
    why: str = ""
    changes: Mapping[str, object] = field(default_factory=dict)
    learn: float | None = None  # how long the service took to make it (seconds), to learn


# Chooses the move for the job as stored now; None leaves it untouched.
Decide = Callable[[Job, datetime], Move | None]


def credits(amount: int) -> str:
    return f"{amount} credit" if amount == 1 else f"{amount} credits"


def clip(text: str, limit: int = FAILURE_REASON_MAX_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def span(minutes: float) -> str:
    if minutes < 120:
        return f"{minutes:g} minute" + ("" if minutes == 1 else "s")
    return f"{minutes / 60:.3g} hours"


def lose(job: Job, _now: datetime) -> Move:
    """A submission never confirmed: given up, never sent again; its holds come back.

    Said as it happened: the video service left the outcome unknown (the job has been
    waiting for it, `next_poll_at` is its deadline), or the bot stopped mid-submission.
    """
    if job.next_poll_at is not None:
        cause = "The video service never confirmed whether it started this video"
    else:
        cause = "The bot stopped before the video service confirmed this video"
    return Move(
        to=JobState.LOST,
        settle="release",
        why="submission never confirmed",
        changes={
            "failure_reason": (
                f"{cause}, so it was given up (never sent twice, so it cannot be made or "
                f"charged twice). Your {credits(job.price)} were returned."
            )
        },
    )
