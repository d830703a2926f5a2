"""A task cancelled at any point of its transaction must not poison the database: on
SQLite, a BEGIN left running on aiosqlite's thread; on PostgreSQL, a pooled connection left
mid-transaction or mid-query."""

from __future__ import annotations

import asyncio
import contextlib

from storage import Database


async def test_cancel_during_begin_leaves_the_connection_usable(db: Database) -> None:
    for round_ in range(100):

        async def write(n: int = round_) -> None:
            async with db.transaction() as store:
                await store.set_meta("k", str(n))

        task = asyncio.create_task(write())
        for _ in range(round_ % 4):  # cancel at different points of the transaction
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # Every later transaction and read must still work.
        await db.set_meta("after", str(round_))
        assert await db.get_meta("after") == str(round_)
