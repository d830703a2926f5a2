"""The video API's budgets shared by every process of a deployment, kept in the database.

The service's limits are per API key, so three processes with their own budgets of 10
submissions a minute could send 30. `DatabaseWindow` keeps each budget's last window of
requests and its pace after a 429 in the database (`api_requests`, `api_budgets`), by the
database's clock, with the same rules as one process's budget (`bot.api.budget`). Taking a
request is one short transaction under the budget's named lock, so two processes never
both take the last place in a window. Used on PostgreSQL; SQLite serves one process, whose
memory is enough.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.api.budget import Pace, wait_for_room

if TYPE_CHECKING:
    from storage import Database, Store


def budget_key(name: str) -> str:
    return f"api-budget:{name}"


async def _pace(store: Store, name: str) -> Pace:
    paused_until, slowed_at, slowed_to = await store.budget_pace(name)
    return Pace(paused_until, slowed_at, slowed_to)


class DatabaseWindow:
    """`bot.api.budget.Window` over the shared database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def take(self, name: str, per_minute: int, period: float) -> float:
        async with self._db.transaction() as store:
            await store.lock(budget_key(name))
            now = await store.clock()
            await store.forget_budget_requests(name, now - period)
            stamps = await store.budget_window(name, now - period)
            wait = wait_for_room(stamps, await _pace(store, name), per_minute, period, now)
            if wait <= 0:
                await store.count_budget_request(name, now)
            return wait

    async def room(self, name: str, per_minute: int, period: float) -> int:
        async with self._db.read() as store:
            now = await store.clock()
            pace = await _pace(store, name)
            if now < pace.paused_until:
                return 0
            stamps = await store.budget_window(name, now - period)
        return max(0, pace.limit(per_minute, now) - len(stamps))

    async def slow(self, name: str, per_minute: int, pause: float) -> int:
        async with self._db.transaction() as store:
            await store.lock(budget_key(name))
            now = await store.clock()
            pace = (await _pace(store, name)).after_429(per_minute, now, pause)
            await store.set_budget_pace(name, pace.paused_until, pace.slowed_at, pace.slowed_to)
        return pace.limit(per_minute, now)

    async def limit(self, name: str, per_minute: int) -> int:
        async with self._db.read() as store:
            now = await store.clock()
            return (await _pace(store, name)).limit(per_minute, now)
