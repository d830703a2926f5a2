"""The one backoff rule of the bot: how long to wait before trying something again.

Every retry in the bot waits by this function, whatever it retries: the video API client
(reads and downloads), the job lifecycle (a failed result read), and delivery (a failed
post to Discord). Only the constants differ, and each caller names its own.
"""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff(
    attempt: int,
    *,
    base: float,
    cap: float,
    jitter: float = 0.0,
    retry_after: float | None = None,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number `attempt` (1 is the first retry).

    `base` doubles with each attempt up to `cap`; up to the fraction `jitter` of it is taken
    off, so clients that failed together do not retry in step. The wait is never shorter
    than `retry_after`, the pause the other side asked for (HTTP Retry-After).
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    # The exponent is bounded so a long-failing job cannot overflow the float.
    delay = min(cap, base * 2.0 ** min(attempt - 1, 60))
    delay *= 1 - jitter * rng()
    return max(delay, retry_after or 0.0)
