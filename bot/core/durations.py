"""How long the video service takes, learned from the bot's own finished jobs.

Jobs are grouped by kind (`bucket`: model, resolution, off-peak, length in seconds). The
newest durations of each kind are kept beside the jobs (`learned_durations`, one row per
kind, whatever the history), and the read schedule asks for the interval most jobs of a
kind end in. A kind seen too seldom borrows from its siblings of other lengths (same
model, resolution and off-peak), scaled by length, else from every job of its model; a
model never seen has nothing learned yet, and the schedule falls back to its growing gaps.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from bot.core.schedule import Learned

if TYPE_CHECKING:
    from storage import Database, Job

KEEP = 40  # newest durations kept per kind
ENOUGH = 5  # samples a kind needs before its own interval is believed
CACHE_SECONDS = 30.0  # how long an interval is reused before the database is asked again
LOW, HIGH = 0.05, 0.95  # most jobs end between these quantiles...
PAD = 0.05  # ...widened by this share each way


def bucket_of(model: str, resolution: str, off_peak: bool, seconds: int) -> str:
    """The kind of a job, as stored; siblings of other lengths share the part before it."""
    return f"{family_of(model, resolution, off_peak)}{seconds:03d}"


def family_of(model: str, resolution: str, off_peak: bool) -> str:
    return f"{model}|{resolution}|{'off' if off_peak else 'std'}|"


def service_seconds(extra: Mapping[str, Any], fallback: float) -> float:
    """How long the service took, from the result's debug_info (submit to complete) when it
    says so plausibly, else `fallback` (the time from submission to the bot seeing it)."""
    info = extra.get("debug_info")
    if isinstance(info, Mapping):
        try:
            submitted = float(info.get("submit_time_ms") or 0)
            completed = float(info.get("complete_time_ms") or 0)
        except (TypeError, ValueError):
            return fallback
        seconds = (completed - submitted) / 1000
        if submitted > 0 and completed > 0 and 0 < seconds <= fallback + 60:
            return seconds
    return fallback


def interval(samples: list[float]) -> Learned:
    """Where most of these durations fall, a little widened."""
    ordered = sorted(samples)
    quantiles = statistics.quantiles(ordered, n=20, method="inclusive")
    low, high = min(ordered[0], quantiles[0]), max(ordered[-1], quantiles[-1])
    if len(ordered) >= 20:
        low, high = quantiles[0], quantiles[-1]
    return Learned(low=low * (1 - PAD), typical=statistics.median(ordered), high=high * (1 + PAD))


class Durations:
    def __init__(self, db: Database, clock: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self._clock = clock
        self._cache: dict[str, tuple[float, Learned | None]] = {}

    async def learned(self, job: Job) -> Learned | None:
        """Where a job of this kind most likely ends (s after submission), or None."""
        bucket = job.bucket
        if not bucket:
            return None
        cached = self._cache.get(bucket)
        now = self._clock()
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        result = await self._ask(bucket)
        self._cache[bucket] = (now, result)
        return result

    async def _ask(self, bucket: str) -> Learned | None:
        family, _, length = bucket.rpartition("|")
        family += "|"
        async with self._db.read() as store:
            kinds = await store.learned_samples(family, family + "~")
        own = kinds.get(bucket, [])
        if len(own) >= ENOUGH:
            return interval(own)
        try:
            seconds = int(length)
        except ValueError:
            return None
        if seconds <= 0:
            return None
        # Borrow from other lengths of the same model, resolution and off-peak: seconds of
        # making per second of video...
        rates = _rates(kinds)
        if len(rates) < ENOUGH:
            # ...else from every job of the model (other resolutions too): a wider interval,
            # but enough to tell an eta four times too long from a plausible one.
            model = family.split("|", 1)[0] + "|"
            async with self._db.read() as store:
                rates = _rates(await store.learned_samples(model, model + "~"))
        if len(rates) < ENOUGH:
            return None
        return interval([rate * seconds for rate in rates])


def _rates(kinds: Mapping[str, list[float]]) -> list[float]:
    """Seconds of making per second of video, over every sample of these kinds."""
    rates = []
    for kind, samples in kinds.items():
        length = kind.rpartition("|")[2]
        if length.isdigit() and int(length) > 0:
            rates += [sample / int(length) for sample in samples]
    return rates
