"""The small interface through which the core reaches the chat platform.

The poller speaks of jobs, never of Discord: it asks a `Delivery` to put up a job's card,
tells it that a job changed (so its card can be redrawn) and asks it to deliver a finished
video. Posting a card and posting a video are both exactly once: a post whose answer was
lost is found again rather than made twice. The Discord implementation lives in
`bot.discord.delivery`; tests may provide their own.
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
    # A retry after a post that broke off without an answer: it may have landed.
    maybe_landed: bool = False

    @classmethod
    def delivered(cls, message_id: int) -> DeliveryOutcome:
        return cls("delivered", message_id=message_id)

    @classmethod
    def retry(
        cls, reason: str, after: float | None = None, *, maybe_landed: bool = False
    ) -> DeliveryOutcome:
        return cls("retry", retry_after=after, reason=reason, maybe_landed=maybe_landed)

    @classmethod
    def undeliverable(cls, reason: str) -> DeliveryOutcome:
        return cls("undeliverable", reason=reason)


class Delivery(Protocol):
    async def post_card(self, job: Job, *, first: bool = False) -> DeliveryOutcome:
        """Put up the job's public card exactly once: `delivered` with its message id (an
        earlier post of it found again counts), `undeliverable` where it cannot be posted
        (the member is then told by direct message), or `retry`. `first`: no earlier post
        can exist, so none is looked for."""

    async def job_changed(self, job: Job) -> bool:
        """Show the job's new state to its requester (e.g. redraw the job card). Never raises.

        Returns whether the member has now been shown it (or never can be). May hold the
        update back (edits are rate-limited): it then shows up in `redraws_due` and the
        poller calls this again with it.
        """

    def redraws_due(self) -> list[Job]:
        """Jobs whose held-back update may be shown now."""

    async def deliver(self, job: Job) -> DeliveryOutcome:
        """Post the finished video of a SUCCEEDED job exactly once."""
