"""When to read a job's result next: reads land where the job is likely to end.

A read is for detection, not for drawing: the card extrapolates between reads. Every read
that finds a job still running is evidence, weighed strongest first:

- **eta** (seconds left, from the service): believed while it agrees with what the bot has
  learned of such jobs, and until a read after the end it promised finds the job running
  (an eta that never goes down, or counts down too fast, breaks that way). With nothing
  learned yet to check it against, reads still come at least every `ceiling` seconds.
- **progress_percent**: a whole percentage of the elapsed time, so a reading `p` at `e`
  seconds puts the end between `e·100/(p+1)` and `e·100/p`; believed while it agrees with
  what the bot learned.
- **learned**: how long the bot's own finished jobs of the same model, resolution and
  length took (`bot.core.durations`): an interval the end most likely falls in.

With an end believed from the eta, one read lands just after it. With an interval, reads
walk through it no further apart than the detection delay allowed (`gap`). With nothing
believable, reads come every `gap`, which grows with the time the job has run: a job of
five minutes is read about every 40 s, a job of twenty seconds every 4.5 s.

While webhooks are seen to arrive (`bot.core.webhooks`), a job waits for its webhook and
is read once, to confirm it; a safety read past the learned interval's end catches a job
whose webhook never came (`safety_read`).

Everything here is pure arithmetic on seconds since the job was submitted; the lifecycle
stores the `Memory` with the job and turns a `Plan` into its next read time. The constants
are for real time; `scale` shrinks every absolute one with it (tests and benchmarks run
scaled time, the bot scales by POLL_MIN_SECONDS / 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

# The detection delay allowed while the bot is unsure: this share of the time the job has
# run, but never less than MIN_GAP seconds. A little under the promise (15 %, at least 5 s)
# so the time a read takes, and the poller's own lateness, still fit in it.
GAP_SHARE = 0.135
MIN_GAP = 4.5
# A read meant to catch the end the eta promised comes this long after it (eta is whole
# seconds, rounded up by the service).
MARGIN = 0.25
# Reads are never closer than this (a read that just missed the end must not spin).
MIN_STEP = 0.5
# An eta or progress estimate agrees with the learned interval when it falls within it,
# widened by this share on each side.
AGREEMENT = 0.3
# A believed eta that misses its end this many times is no longer believed.
MISSES_ALLOWED = 1


@dataclass(frozen=True, slots=True)
class Learned:
    """How long similar jobs took, in seconds after submission: most end in [low, high]."""

    low: float
    typical: float
    high: float

    def agrees(self, low: float, high: float) -> bool:
        """Whether [low, high] overlaps this interval, widened by AGREEMENT."""
        widen = AGREEMENT * self.typical
        return low <= self.high + widen and high >= self.low - widen


@dataclass(frozen=True, slots=True)
class Memory:
    """What the schedule keeps of a job between reads (stored with the job)."""

    eta_end: float | None = None  # the end the believed eta promised, s after submission
    eta_misses: int = 0  # reads at or after that end that found the job running
    eta_broken: bool = False  # the eta is not believed for this job any more
    progress_end: float | None = None  # the latest end the believed progress allowed
    progress_misses: int = 0
    progress_broken: bool = False
    not_found: int = 0  # consecutive reads the service answered "task not found"

    def to_json(self) -> dict[str, object]:
        defaults = Memory()
        return {
            name: getattr(self, name)
            for name in self.__slots__
            if getattr(self, name) != getattr(defaults, name)
        }

    @classmethod
    def from_json(cls, data: object) -> Memory:
        if not isinstance(data, dict):
            return cls()
        known = {key: value for key, value in data.items() if key in cls.__slots__}
        try:
            return cls(**known)
        except TypeError:
            return cls()


@dataclass(frozen=True, slots=True)
class Plan:
    """The next read: when (s after submission), whether the job is likely done by then
    (such reads go first when the read budget is short), the best guess of the end (for
    the card; None: no guess), and the memory to keep."""

    read_at: float
    likely: bool
    expected_end: float | None
    memory: Memory = field(default_factory=Memory)
    source: str = "none"  # what the read is based on: eta, progress, learned or none


def gap(elapsed: float, floor: float = MIN_GAP) -> float:
    """The detection delay allowed after `elapsed` seconds of running."""
    return max(floor, GAP_SHARE * elapsed)


def safety_read(learned: Learned | None, *, scale: float = 1.0) -> float | None:
    """While webhooks are seen to arrive, a job is not read before this (s after
    submission): past the end of the interval such jobs end in, so a webhook that never
    comes costs one late read, not a lost video. None: nothing learned, read as usual."""
    if learned is None:
        return None
    return learned.high + gap(learned.high, MIN_GAP * scale)


def plan(
    elapsed: float,
    memory: Memory,
    *,
    eta: int | None,
    progress: int | None,
    learned: Learned | None,
    floor: float | None = None,
    ceiling: float | None = None,
    scale: float = 1.0,
) -> Plan:
    """The next read of a job found still running `elapsed` seconds after submission.

    `eta`/`progress` are what that read said (None or 0: not said); `floor` is the least
    gap while unsure (default MIN_GAP) and `ceiling` the most, which only bounds reads made
    with nothing believable to go on; `scale` shrinks the absolute constants.
    """
    floor = MIN_GAP * scale if floor is None else floor
    margin, step = MARGIN * scale, MIN_STEP * scale
    earliest = elapsed + step
    memory = _judge_eta(elapsed, memory, eta, learned)
    memory, window = _judge_progress(elapsed, memory, progress, learned)
    expected = learned.typical if learned is not None else None

    if memory.eta_end is not None:
        end = memory.eta_end
        read_at = max(earliest, end + margin)
        if learned is None and ceiling is not None and read_at > elapsed + ceiling:
            # Nothing learned yet to check the eta against: believed, but not blindly; a
            # read at least every `ceiling` seconds still catches an eta far too long.
            return Plan(elapsed + max(ceiling, floor), False, end, memory, "eta")
        return Plan(read_at, True, end, memory, "eta")

    source = "progress"
    if window is not None and learned is not None:
        low, high = max(window[0], learned.low), min(window[1], learned.high)
        window = (low, high) if low <= high else window
    if window is None and learned is not None and learned.high > elapsed:
        window, source = (learned.low, learned.high), "learned"
    allowed = gap(elapsed, floor)
    if window is None:
        if ceiling is not None:
            allowed = min(allowed, max(ceiling, floor))
        return Plan(max(earliest, elapsed + allowed), False, expected, memory, "none")

    low, high = max(window[0], elapsed), window[1]
    expected = min(max(expected if expected is not None else (low + high) / 2, low), high)
    if learned is None and ceiling is not None:
        # A window from progress alone, unchecked: not trusted further than `ceiling`.
        low, high = (
            min(low, elapsed + max(ceiling, floor)),
            min(high, elapsed + max(ceiling, floor)),
        )
    if high - low <= allowed:
        return Plan(max(earliest, high + margin), True, expected, memory, source)
    if low > elapsed + allowed:
        # Nothing to find before the window opens: the first read at its lower edge.
        return Plan(low, False, expected, memory, source)
    return Plan(max(earliest, elapsed + allowed), True, expected, memory, source)


def _judge_eta(elapsed: float, memory: Memory, eta: int | None, learned: Learned | None) -> Memory:
    """The memory after a read said `eta` at `elapsed` (the job still running)."""
    if memory.eta_broken:
        return memory
    if memory.eta_end is not None and elapsed >= memory.eta_end:
        # The promised end has passed and the job runs on.
        misses = memory.eta_misses + 1
        if misses > MISSES_ALLOWED:
            return replace(memory, eta_end=None, eta_misses=misses, eta_broken=True)
        memory = replace(memory, eta_misses=misses)
    if not eta or eta <= 0:
        return replace(memory, eta_end=None)
    end = elapsed + eta
    promised = memory.eta_end
    if promised is not None and elapsed < promised and end > promised + max(2.0, 0.1 * elapsed):
        # The eta did not count down with the time that passed (a number stuck at its first
        # value, or raised): keep the end it promised first, until that end has passed.
        end = promised
    if learned is not None and not learned.agrees(end - 1, end):
        # An eta far from what such jobs take (four times too long, say) is not believed;
        # it may be believed again if a later read brings it in line.
        return replace(memory, eta_end=None)
    return replace(memory, eta_end=end)


def _judge_progress(
    elapsed: float, memory: Memory, progress: int | None, learned: Learned | None
) -> tuple[Memory, tuple[float, float] | None]:
    """The memory after a read said `progress` at `elapsed`, and the window of the end it
    implies if believed."""
    if memory.progress_broken:
        return memory, None
    if memory.progress_end is not None and elapsed >= memory.progress_end:
        misses = memory.progress_misses + 1
        if misses > MISSES_ALLOWED:
            return replace(
                memory, progress_end=None, progress_misses=misses, progress_broken=True
            ), None
        memory = replace(memory, progress_misses=misses)
    if progress is None or not 1 <= progress <= 99:
        return replace(memory, progress_end=None), None
    window = (elapsed * 100 / (progress + 1), elapsed * 100 / progress)
    if learned is not None and not learned.agrees(*window):
        return replace(memory, progress_end=None), None  # contradicts what the bot learned
    return replace(memory, progress_end=window[1]), window
