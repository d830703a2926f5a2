"""The platform-neutral core: submitting, the job lifecycle, moderation, and the poller.

Nothing here imports `discord` or words anything for a chat platform; a front end reaches
members through the `Delivery` interface and turns typed refusals into words.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from bot.core.books import Books
from bot.core.housekeeping import Housekeeping
from bot.core.leases import Leases
from bot.core.lifecycle import Lifecycle
from bot.core.moderation import Moderation
from bot.core.quota import utcnow
from bot.core.submitting import Submitting, VideoSubmitter

if TYPE_CHECKING:
    from bot.settings import Settings
    from storage import Database


@dataclass(frozen=True, slots=True)
class Core:
    """The services of the core, sharing one database, one clock and the settings."""

    submitting: Submitting
    lifecycle: Lifecycle
    moderation: Moderation
    housekeeping: Housekeeping
    leases: Leases

    @classmethod
    def build(
        cls,
        db: Database,
        api: VideoSubmitter,
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
    ) -> Core:
        books = Books(db, settings, clock)
        lifecycle = Lifecycle(books)
        leases = Leases(books)
        return cls(
            Submitting(books, api, lifecycle),
            lifecycle,
            Moderation(books),
            Housekeeping(books, lifecycle, leases),
            leases,
        )
