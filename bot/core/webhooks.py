"""Whether webhooks can be counted on, learned from the jobs that asked for one.

Support for webhooks on the Vidu endpoints is unconfirmed, so nothing depends on them: a
webhook only asks for a read (`Lifecycle.webhook_hint`), and the read decides. But while
they are seen to arrive, reading a job before its webhook only spends the rate limit, so
the poller holds a job's reads until its webhook or a late safety read
(`bot.core.schedule.safety_read`), whichever comes first.

Webhooks are *trusted* when each of the newest `SAMPLE` jobs the service made a video for
(at least `AT_LEAST` of them, ended `GRACE` seconds ago or more, so a webhook on its way is
not counted missing) got one. One job whose webhook never came ends the trust until
`SAMPLE` newer ones have theirs: the poller falls back to its own schedule at once. The
answer comes from the database, so every process sharing it agrees, and is kept
`CACHE_SECONDS` by each.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.core.quota import utcnow
from bot.core.results import time_scale

if TYPE_CHECKING:
    from bot.settings import Settings
    from storage import Database

SAMPLE = 5
AT_LEAST = 3
GRACE = 60.0  # s after a job ended before its webhook counts as missing
CACHE_SECONDS = 10.0


class WebhookTrust:
    """`await trust.trusted()`: whether webhooks have been arriving lately."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        now: Callable[[], datetime] = utcnow,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._enabled = settings.webhook_public_url is not None
        self._scale = time_scale(settings)  # GRACE and CACHE_SECONDS are for real time
        self._now = now
        self._clock = clock
        self._cached: tuple[float, bool] | None = None

    async def trusted(self) -> bool:
        if not self._enabled:
            return False
        now = self._clock()
        if self._cached is not None and now - self._cached[0] < CACHE_SECONDS * self._scale:
            return self._cached[1]
        before = self._now() - timedelta(seconds=GRACE * self._scale)
        async with self._db.read() as store:
            seen = await store.webhooks_seen(before, SAMPLE)
        trusted = len(seen) >= AT_LEAST and all(seen)
        self._cached = (now, trusted)
        return trusted
