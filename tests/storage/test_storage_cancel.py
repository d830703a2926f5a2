"""A task cancelled while its BEGIN is on aiosqlite's thread must not poison the connection."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from storage import Database


async def test_cancel_during_begin_leaves_the_connection_usable(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "bot.sqlite3")
    try:
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
    finally:
        await db.close()
