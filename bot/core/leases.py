"""Work shared by leases: a job is read, delivered or redrawn by the one process that holds
its lease, so any number of bot processes can share one PostgreSQL database.

The poller takes its work by claims (`reads_due`, `deliveries_due`, `cards_to_post`,
`cards_to_show`): one statement leases the due jobs nobody else holds to this process for
LEASE_SECONDS. A lease is kept while the process works (`keep_alive` renews the leases of
the jobs it is busy with) and stays with it after, so a job's reads keep coming from the
same process; a process that stops cleanly gives its leases up at once, and one that dies
loses them when they expire, after which the others take its jobs over.

Each process also says it is alive (the `processes` table), which recovery asks: a start
while others run needs no catching up (they carried on), a start of the whole deployment
does. On SQLite, the one-process store, the same code runs and nobody else ever claims.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from bot.core.books import Books
from storage import Job

log = logging.getLogger(__name__)


class Leases:
    def __init__(self, books: Books) -> None:
        self._books = books
        self.owner = books.owner
        self.seconds = books.settings.lease_seconds
        self._kept_at: datetime | None = None

    def _span(self) -> tuple[datetime, datetime]:
        now = self._books.now()
        return now, now + timedelta(seconds=self.seconds)

    # --- claims -------------------------------------------------------------------------

    async def reads_due(self, limit: int = 50) -> list[Job]:
        """Jobs whose next read has come, leased to this process: the likeliest to be done
        first, then the most overdue."""
        now, until = self._span()
        async with self._books.db.transaction() as store:
            return await store.claim_reads(self.owner, now, until, limit)

    async def deliveries_due(self, limit: int = 50) -> list[Job]:
        """SUCCEEDED jobs whose (next) delivery attempt is due, leased to this process."""
        now, until = self._span()
        async with self._books.db.transaction() as store:
            return await store.claim_deliveries(self.owner, now, until, limit)

    async def cards_to_post(
        self, *, older_than: float = 0.0, or_before: datetime | None = None, limit: int = 50
    ) -> list[Job]:
        """Jobs whose card is still to be posted, made `older_than` seconds ago or earlier,
        or before `or_before` (no command is left to post it)."""
        now, until = self._span()
        before = _before(now, older_than, or_before)
        async with self._books.db.transaction() as store:
            return await store.claim_pending_cards(self.owner, before, now, until, limit)

    async def cards_to_show(
        self, *, older_than: float, or_before: datetime | None = None, limit: int = 50
    ) -> list[Job]:
        """Jobs whose member has not been shown their state, last changed `older_than`
        seconds ago or earlier, or before `or_before` (a stop in between left it)."""
        now, until = self._span()
        before = _before(now, older_than, or_before)
        async with self._books.db.transaction() as store:
            return await store.claim_stale_cards(self.owner, before, now, until, limit)

    async def next_read_in(self) -> float | None:
        """Seconds until the earliest read still to come that this process may make (None:
        none planned; reads already due, and jobs whose holder died, are the tick's
        business)."""
        now = self._books.now()
        async with self._books.db.read() as store:
            at = await store.next_read_at(now, self.owner)
        return None if at is None else (at - now).total_seconds()

    # --- this process ---------------------------------------------------------------------

    async def start(self) -> None:
        """Say this process is alive, and give up what its earlier life held (it died
        holding them): those jobs need not wait for the leases to run out."""
        now = self._books.now()
        name = self.owner.rpartition("/")[0]
        async with self._books.db.transaction() as store:
            released = await store.release_earlier_leases(name, self.owner)
            await store.earlier_lives_gone(name, self.owner)
            await store.process_seen(self.owner, now)
        self._kept_at = None  # the first tick keeps alive at once, and tells how many it holds
        if released:
            log.info("leases: %d job(s) held by this process's earlier life released", released)

    async def keep_alive(self, busy: Iterable[int]) -> int | None:
        """Renew the leases of the jobs this process is busy with (`busy`, and every
        submission running here: one that waits long for the service, behind the budget or
        its retries, must not look abandoned to the others), and say it is alive; at most
        every third of a lease. Returns how many leases it holds (None: not looked at this
        time)."""
        now = self._books.now()
        if self._kept_at is not None and now - self._kept_at < timedelta(seconds=self.seconds / 3):
            return None
        until = now + timedelta(seconds=self.seconds)
        async with self._books.db.transaction() as store:
            await store.renew_leases(self.owner, {*busy, *self._books.in_flight}, until)
            await store.process_seen(self.owner, now)
            held = await store.count_leases(self.owner, now)
        self._kept_at = now
        return held

    async def others_alive(self) -> list[str]:
        """The other processes that said they were alive within a lease."""
        now = self._books.now()
        since = now - timedelta(seconds=self.seconds)
        async with self._books.db.transaction() as store:
            alive = await store.processes_alive(since, forget_before=now - timedelta(days=1))
        return [owner for owner in alive if owner != self.owner]

    async def stop(self) -> None:
        """A clean stop: every lease given up at once, so the others take over now."""
        async with self._books.db.transaction() as store:
            released = await store.release_leases(self.owner)
            await store.process_gone(self.owner)
        log.info("leases: %d released on stop", released)


def _before(now: datetime, older_than: float, or_before: datetime | None) -> datetime:
    before = now - timedelta(seconds=older_than)
    return before if or_before is None else max(before, or_before)
