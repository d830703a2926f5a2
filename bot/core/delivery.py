"""The small interface through which the core reaches the chat platform.

The poller speaks of jobs, never of Discord: it tells a `Delivery` that a job changed (so its
card can be redrawn) and asks it to deliver a finished video. The Discord implementation
lives in `bot.discord.delivery`; tests may provide their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from storage.models import Job


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What happened to one delivery attempt."""

    kind: Literal["delivered", "retry", "undeliverable"]
    message_id: int | None = None
    retry_after: float | None = None
    reason: str = ""

    @classmethod
    def delivered(cls, message_id: int) -> DeliveryOutcome:
        return cls("delivered", message_id=message_id)

    @classmethod
    def retry(cls, reason: str, after: float | None = None) -> DeliveryOutcome:
        return cls("retry", retry_after=after, reason=reason)

    @classmethod
    def undeliverable(cls, reason: str) -> DeliveryOutcome:
        return cls("undeliverable", reason=reason)


class Delivery(Protocol):
    async def job_changed(self, job: Job) -> None:
        """Show the job's new state to its requester (e.g. redraw the job card). Never raises.

        May hold the update back (edits are rate-limited); it then shows up in
        `redraws_due` and the poller calls this again with it.
        """

    def redraws_due(self) -> list[Job]:
        """Jobs whose held-back update may be shown now."""

    async def deliver(self, job: Job) -> DeliveryOutcome:
        """Post the finished video of a SUCCEEDED job exactly once."""
