"""Benchmark: how the bot's costs grow with history (issue 8, points 4 and 5).

    python tests/bench/bench_costs.py [--quick] [--seed 8] [--parts 1,2,3,4] [--dir PATH]
                                      [--postgres postgresql://postgres@127.0.0.1:5432/test]

A script, not a test: it prints tables and asserts nothing. Every figure stands next to a
baseline measured in the same run on the same backend, and as a ratio to it (these
machines are noisy: read the ratios). Repeated measurements take turns between the
baseline and the loaded databases, so a slow spell of the machine hits both alike, and the
process pins itself to one CPU (`--no-pin` not to; see `pin_to_one_cpu`).

1. Recovery at start (`Housekeeping.recover`) of 10,000 active jobs (QUEUED/PROCESSING with
   task ids, half of them due already, half due within ten minutes) vs 10: peak Python
   memory growth (tracemalloc, in a run of its own), wall time and database time. Then a
   job submitted right after the restart: when its first read is due, and where it stands
   among the due jobs then (`Lifecycle.due_jobs()`, or `Leases.reads_due()` where the core
   leases its jobs to processes).
2. The database work of one poller tick (expire overdue jobs, due reads, due deliveries,
   cards to redraw, cards to post, and the leases' keep-alive where there are leases) with
   10,000 active jobs not due (and with 50,000 finished jobs besides) vs an empty database.
3. A member's balance, the guild's typical price, a quote and a submission for a member
   with 10 vs 10,000 ledger rows (spread over a year) and a guild with 0 vs 50,000
   finished jobs; one more column, for information, puts all 10,000 rows in this period.
4. Submissions per second through `Core.submitting.submit` (an instant fake API) vs as
   many plain one-row INSERT transactions into `jobs`, one after another and 20 at once;
   the database round trips of each, and a submission's database time by function.

Where a cost grows, a profiled pass tells the database time by the storage function that
asked for it (file and line of its `def`), baseline vs loaded.

History comes from a seeded generator and is written with plain SQL (executemany on
SQLite, then the file is opened again, as a restart does, which analyzes it as the bot does
at every start and every hour; COPY on PostgreSQL, then ANALYZE, as autovacuum would soon).
`--quick` uses smaller sizes (the targets are then not judged). On SQLite files in a
temporary folder (or `--dir`) by default; `--postgres URL` runs on that server, in schemas
of its own that are dropped at the end.

Database time and round trips come from wrapping each transaction and the store's
connection (the `storage.sql.Connection` protocol); nothing in storage/ is changed.
Round trips are derived from the calls: on SQLite every call is a hop to aiosqlite's
thread (`fetch` one, `execute` two: the cursor is closed after it), BEGIN and COMMIT one
each; on PostgreSQL every statement and every named-lock key is one, and a transaction
three (BEGIN, COMMIT or ROLLBACK, and the reset query asyncpg's pool sends when the
connection goes back), once its statements are prepared on that connection (checked
against asyncpg's query log).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.core import Core
from bot.core.durations import bucket_of
from bot.core.poller import BATCH as POLL_BATCH
from bot.core.poller import CARD_GRACE_SECONDS, STALE_AFTER_SECONDS
from bot.core.quota import period_end, period_start
from bot.core.submitting import SubmitRequest
from bot.settings import Settings
from storage import Database, InputRef, Job, Store, open_database
from storage.sql import Row, to_db

# --- what is measured, and how much of it ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sizes:
    active: int = 10_000  # active jobs at a restart / in the tick
    few_active: int = 10  # ... the baseline
    ledger: int = 10_000  # one member's ledger rows
    few_ledger: int = 10  # ... the baseline
    finished: int = 50_000  # finished jobs in the member's guild
    submissions: int = 2_000  # per concurrency level, for submissions per second
    block: int = 100  # submissions (and inserts) per timed block; the kinds alternate
    concurrency: int = 20
    reps: int = 200  # repetitions of each read (tick, balance, quote ...)
    submit_reps: int = 36  # a member may run 50 jobs at once (the most the settings allow)
    recovery_runs: int = 3


QUICK = Sizes(
    active=1_000,
    ledger=1_000,
    finished=5_000,
    submissions=300,
    block=50,
    reps=40,
    submit_reps=15,
    recovery_runs=1,
)

# Targets of the issue.
RECOVERY_PEAK_MB = 20.0
RECOVERY_DB_SECONDS = 1.0
GROWTH_RATIO = 1.5  # tick, balance and submit cost with history vs without
RATE_SHARE = 1 / 3  # submissions per second vs plain inserts

MODEL = "vidu-q3-pro-i2v"
RESOLUTION, SECONDS = "720p", 5
PRICE = 30  # credits of the request below at the catalog price (6 a second at 720p)
IMAGE = "https://cdn.example/attachments/1/2/cat.png"
PARAMS: dict[str, Any] = {
    "images": [IMAGE],
    "prompt": "a cat surfing a wave",
    "duration": SECONDS,
    "resolution": RESOLUTION,
}
INPUTS = [InputRef(kind="image", url=IMAGE, filename="cat.png", content_type="image/png")]
INPUTS_JSON = json.dumps([ref.model_dump() for ref in INPUTS], separators=(",", ":"))
BUCKET = bucket_of(MODEL, RESOLUTION, False, SECONDS)
TIMEOUT = timedelta(minutes=180)  # JOB_TIMEOUT_MINUTES's default

GUILD, MEMBER = 1, 10  # the member whose costs are measured (part 3)
OTHERS = range(1_000, 3_000)  # the rest of the guild's members
ACTIVE_GUILDS = range(100, 120)  # where the active jobs are (parts 1 and 2)
NEW_GUILD, NEW_MEMBER = 50, 5  # submits right after the restart (part 1)
RATE_GUILD, PLAIN_GUILD = 7, 8  # part 4
RATE_MEMBERS = 500

FINISHED_STATES = (
    ("DELIVERED", 0.86),
    ("FAILED", 0.06),
    ("REJECTED", 0.03),
    ("UNDELIVERABLE", 0.02),
    ("EXPIRED", 0.02),
    ("LOST", 0.01),
)

# --- counting what reaches the database ---------------------------------------------------


@dataclass(slots=True)
class Counts:
    postgres: bool
    fetches: int = 0
    executes: int = 0
    lock_keys: int = 0  # named locks taken (a round trip each on PostgreSQL)
    transactions: int = 0
    seconds: float = 0.0  # awaiting the database: statements, locks, BEGIN, COMMIT
    # Only while profiling: the database time by the storage function that asked for it.
    where: dict[str, list[float]] = field(default_factory=dict)  # name -> [calls, seconds]

    @property
    def statements(self) -> int:
        return self.fetches + self.executes

    @property
    def round_trips(self) -> int:
        if self.postgres:
            return self.statements + self.lock_keys + 3 * self.transactions
        return self.fetches + 2 * self.executes + 2 * self.transactions

    def note(self, name: str, seconds: float) -> None:
        entry = self.where.setdefault(name, [0, 0.0])
        entry[0] += 1
        entry[1] += seconds

    def copy(self) -> Counts:
        return replace(self, where={name: list(v) for name, v in self.where.items()})

    def since(self, earlier: Counts) -> Counts:
        where = {}
        for name, (calls, seconds) in self.where.items():
            before = earlier.where.get(name, [0, 0.0])
            if calls > before[0]:
                where[name] = [calls - before[0], seconds - before[1]]
        return Counts(
            self.postgres,
            self.fetches - earlier.fetches,
            self.executes - earlier.executes,
            self.lock_keys - earlier.lock_keys,
            self.transactions - earlier.transactions,
            self.seconds - earlier.seconds,
            where,
        )

    def per(self, n: int) -> str:
        """Statements, transactions and round trips per operation."""
        n = max(1, n)
        return (
            f"{self.statements / n:.1f} stmt + {self.lock_keys / n:.1f} lock in "
            f"{self.transactions / n:.1f} tx = {self.round_trips / n:.1f} round trips"
        )


def _asker() -> str:
    """The storage function (file:line of its def) a statement comes from."""
    frame = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        path = Path(code.co_filename)
        if path.parent.name == "storage" and path.name != "sql.py":
            return f"storage/{path.name}:{code.co_firstlineno} {code.co_name}"
        frame = frame.f_back  # type: ignore[assignment]
    return "(elsewhere)"


class CountingConnection:
    """A `storage.sql.Connection` that counts and times the calls to the real one."""

    def __init__(self, inner: Any, db: CountedDatabase) -> None:
        self._inner = inner
        self._db = db
        self._counts = db.counts
        self.row_lock: str = inner.row_lock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)  # what a dialect says of itself (claim_lock …)

    def _spent(self, start: float, what: str | None = None) -> None:
        elapsed = time.perf_counter() - start
        self._counts.seconds += elapsed
        if self._db.profile:
            self._counts.note(what or _asker(), elapsed)

    async def lock(self, keys: Sequence[str], shared: Collection[str] = ()) -> None:
        start = time.perf_counter()
        try:
            await self._inner.lock(keys, shared)
        finally:
            self._spent(start, "named locks")
            if self._counts.postgres:
                self._counts.lock_keys += len(keys)

    async def fetch(self, sql: str, params: Sequence[object]) -> list[Row]:
        start = time.perf_counter()
        try:
            rows: list[Row] = await self._inner.fetch(sql, params)
            return rows
        finally:
            self._spent(start)
            self._counts.fetches += 1

    async def execute(self, sql: str, params: Sequence[object]) -> int:
        start = time.perf_counter()
        try:
            changed: int = await self._inner.execute(sql, params)
            return changed
        finally:
            self._spent(start)
            self._counts.executes += 1


class CountedDatabase:
    """The bot's `Database`, every transaction and statement of it counted and timed;
    with `profile` set, the time is also told by the storage function asking."""

    def __init__(self, db: Database) -> None:
        self.inner = db
        self.counts = Counts(postgres=db.dialect == "postgres")
        self.profile = False

    @property
    def dialect(self) -> Any:
        return self.inner.dialect

    @property
    def schema_version(self) -> int:
        return self.inner.schema_version

    def transaction(self) -> AbstractAsyncContextManager[Store]:
        return self._counted(self.inner.transaction())

    def read(self) -> AbstractAsyncContextManager[Store]:
        return self._counted(self.inner.read())

    async def get_meta(self, key: str) -> str | None:
        async with self.read() as store:
            return await store.get_meta(key)

    async def set_meta(self, key: str, value: str) -> None:
        async with self.transaction() as store:
            await store.set_meta(key, value)

    async def close(self) -> None:
        await self.inner.close()

    def snapshot(self) -> Counts:
        return self.counts.copy()

    def _spent(self, start: float) -> None:
        elapsed = time.perf_counter() - start
        self.counts.seconds += elapsed
        if self.profile:
            self.counts.note("BEGIN + COMMIT (or ROLLBACK)", elapsed)

    @contextlib.asynccontextmanager
    async def _counted(self, manager: AbstractAsyncContextManager[Store]) -> AsyncIterator[Store]:
        start = time.perf_counter()
        store = await manager.__aenter__()
        self._spent(start)
        self.counts.transactions += 1
        store._conn = CountingConnection(store._conn, self)
        try:
            yield store
        except BaseException as error:
            start = time.perf_counter()
            try:
                if not await manager.__aexit__(type(error), error, error.__traceback__):
                    raise
            finally:
                self._spent(start)
        else:
            start = time.perf_counter()
            try:
                await manager.__aexit__(None, None, None)
            finally:
                self._spent(start)


def growth_rows(
    what: str, base: dict[str, float], loaded: dict[str, float], label: str, top: int = 3
) -> list[list[str]]:
    """The storage functions whose database time per operation grew most from `base` to
    `loaded` (from `profiled`)."""
    grown = []
    for name in set(base) | set(loaded):
        a, b = base.get(name, 0.0), loaded.get(name, 0.0)
        grown.append((b - a, name, a, b))
    return [
        [what, label, name, f"{a * 1e6:.0f} us", f"{b * 1e6:.0f} us", f"{delta * 1e6:+.0f} us"]
        for delta, name, a, b in sorted(grown, reverse=True)[:top]
    ]


GROWTH_HEADERS = ["", "vs", "storage function (def line)", "baseline", "loaded", "growth"]


# --- the core, with an instant API and a clock that can be moved ------------------------


class InstantAPI:
    """Stands in for `VideoAPI.submit` (like tests/core/jobkit.py's FakeAPI): a task id at
    once."""

    def __init__(self) -> None:
        self._prefix = uuid.uuid4().hex[:8]
        self._next = 0

    async def submit(self, endpoint: Any, request: Any, *, webhook_url: str | None = None) -> str:
        await asyncio.sleep(0)  # let other coroutines run, as a real request would
        self._next += 1
        return f"instant-{self._prefix}-{self._next}"


class Clock:
    """The real time, moved by `offset` (to look at the moment a job becomes due)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


class PollerWork:
    """What the poller asks the database each tick, under the names this version of the
    core has: `Lifecycle.due_jobs` and its siblings, or, where jobs are leased to processes,
    the claims of `core.leases` (and its keep-alive, every third of a lease)."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.leases: Any = getattr(core, "leases", None)

    @property
    def names(self) -> str:
        if self.leases is None:
            return "expire_overdue + due_jobs + pending_deliveries + cards_stale + cards_pending"
        return (
            "keep_alive + expire_overdue + reads_due + deliveries_due + cards_to_show + "
            "cards_to_post"
        )

    @property
    def due_name(self) -> str:
        return "Lifecycle.due_jobs()" if self.leases is None else "Leases.reads_due()"

    async def reads_due(self, limit: int) -> list[Job]:
        if self.leases is None:
            due: list[Job] = await self.core.lifecycle.due_jobs(limit=limit)  # type: ignore[attr-defined]
            return due
        claimed: list[Job] = await self.leases.reads_due(limit=limit)
        return claimed

    async def tick(self, started: datetime) -> None:
        """The database work of `Poller.tick()` with nothing to do (no jobs spawned)."""
        lifecycle: Any = self.core.lifecycle
        if self.leases is not None:
            await self.leases.keep_alive(())
        await self.core.housekeeping.expire_overdue()
        await self.reads_due(POLL_BATCH)
        if self.leases is None:
            await lifecycle.pending_deliveries()
            await lifecycle.cards_stale(older_than=STALE_AFTER_SECONDS, or_before=started)
            await lifecycle.cards_pending()
        else:
            await self.leases.deliveries_due()
            await self.leases.cards_to_show(older_than=STALE_AFTER_SECONDS, or_before=started)
            await self.leases.cards_to_post(older_than=CARD_GRACE_SECONDS, or_before=started)

    async def keep_alive_now(self) -> None:
        """The leases' keep-alive as it runs every third of a lease (not skipped)."""
        self.leases._kept_at = None
        await self.leases.keep_alive(())


def make_settings() -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        discord_token="x",
        novita_simulate=True,
        default_allowance=1_000_000_000,  # history must not run the members out of credit
        default_max_concurrent_jobs=50,
    )


def build_core(db: CountedDatabase, settings: Settings, clock: Clock | None = None) -> Core:
    return Core.build(db, InstantAPI(), settings, clock or Clock())  # type: ignore[arg-type]


def submit_request(guild: int, user: int) -> SubmitRequest:
    return SubmitRequest(
        guild_id=guild, channel_id=2, user_id=user, model=MODEL, params=PARAMS, inputs=INPUTS
    )


# --- history ------------------------------------------------------------------------------

JOB_COLUMNS = (
    "id",
    "guild_id",
    "channel_id",
    "user_id",
    "model",
    "params",
    "inputs",
    "price",
    "off_peak",
    "state",
    "task_id",
    "progress",
    "eta",
    "next_poll_at",
    "attempts",
    "card_message_id",
    "result_url",
    "result_expires_at",
    "failure_reason",
    "delivered_message_id",
    "created_at",
    "updated_at",
    "finished_at",
    "card_state",
    "card_stale",
    "read_priority",
    "expected_at",
    "give_up_at",
    "bucket",
)
LEDGER_COLUMNS = (
    "guild_id",
    "user_id",
    "job_id",
    "kind",
    "pool",
    "amount",
    "actor",
    "reason",
    "created_at",
)


class History:
    """Seeded rows of jobs and ledger, written with plain SQL (`Backend.insert`)."""

    def __init__(self, seed: int, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.jobs: list[dict[str, Any]] = []
        self.ledger: list[dict[str, Any]] = []
        self._tasks = 0

    def _task_id(self) -> str:
        self._tasks += 1
        return f"hist-{self._tasks:08d}"

    def _params(self) -> str:
        body = {**PARAMS, "seed": self.rng.randint(1, 2**31 - 1)}
        return json.dumps(body, separators=(",", ":"), sort_keys=True)

    def _when(self, since: datetime) -> datetime:
        """A moment between `since` and ten minutes ago (or now, for a short window)."""
        latest = self.now - timedelta(minutes=10)
        if latest <= since:
            latest = self.now
        return since + (latest - since) * self.rng.random()

    def _job(self, guild: int, user: int, created: datetime, **columns: Any) -> dict[str, Any]:
        job: dict[str, Any] = {
            "guild_id": guild,
            "channel_id": guild * 10 + 2,
            "user_id": user,
            "model": MODEL,
            "params": self._params(),
            "inputs": INPUTS_JSON,
            "price": PRICE,
            "off_peak": 0,
            "task_id": None,
            "progress": 0,
            "eta": None,
            "next_poll_at": None,
            "attempts": 0,
            "card_message_id": self.rng.randrange(10**17, 10**18),
            "result_url": None,
            "result_expires_at": None,
            "failure_reason": None,
            "delivered_message_id": None,
            "created_at": created,
            "updated_at": created,
            "finished_at": None,
            "card_state": "posted",
            "card_stale": 0,
            "read_priority": 1,
            "expected_at": None,
            "give_up_at": created + TIMEOUT,
            "bucket": BUCKET,
        }
        job.update(columns)
        if job["state"] not in ("SUBMITTING", "QUEUED", "PROCESSING"):
            job["give_up_at"] = None  # as the bot stores an ended job (migration 006)
        self.jobs.append(job)
        return job

    def _entry(
        self,
        guild: int,
        user: int,
        kind: str,
        amount: int,
        at: datetime,
        *,
        job: dict[str, Any] | None = None,
        pool: str | None = None,
        actor: str = "system",
        reason: str = "",
    ) -> None:
        self.ledger.append(
            {
                "guild_id": guild,
                "user_id": user,
                "job": job,
                "kind": kind,
                "pool": pool,
                "amount": amount,
                "actor": actor,
                "reason": reason,
                "created_at": at,
            }
        )

    def active(
        self,
        count: int,
        *,
        guilds: Sequence[int],
        due_share: float,
        future: tuple[float, float],
    ) -> None:
        """Jobs QUEUED or PROCESSING with a task id and their holds; `due_share` of them
        were due up to ten minutes ago, the rest `future` seconds from now."""
        rng = self.rng
        for _ in range(count):
            guild = rng.choice(guilds)
            created = self.now - timedelta(seconds=rng.uniform(60, 2 * 3600))
            queued = rng.random() < 0.3
            if rng.random() < due_share:
                next_read = self.now - timedelta(seconds=rng.uniform(1, 600))
            else:
                next_read = self.now + timedelta(seconds=rng.uniform(*future))
            job = self._job(
                guild,
                rng.choice(OTHERS),
                created,
                state="QUEUED" if queued else "PROCESSING",
                task_id=self._task_id(),
                progress=0 if queued else rng.randint(1, 95),
                eta=None if queued else rng.randint(5, 300),
                next_poll_at=next_read,
                attempts=rng.randint(0, 30),
                updated_at=min(self.now, created + timedelta(seconds=rng.uniform(1, 600))),
                read_priority=0 if rng.random() < 0.3 else 1,
                expected_at=created + timedelta(seconds=rng.uniform(60, 300)),
            )
            self._entry(guild, job["user_id"], "hold", PRICE, created, job=job, pool="period")

    def finished(self, count: int, *, guild: int, users: Sequence[int], since: datetime) -> None:
        """Finished jobs (mostly delivered) and their holds, committed or released."""
        rng = self.rng
        states = [state for state, _ in FINISHED_STATES]
        weights = [weight for _, weight in FINISHED_STATES]
        for state in rng.choices(states, weights, k=count):
            user = rng.choice(users)
            created = self._when(since)
            ended = min(self.now, created + timedelta(seconds=rng.uniform(20, 400)))
            charged = state in ("DELIVERED", "UNDELIVERABLE")
            job = self._job(
                guild,
                user,
                created,
                state=state,
                task_id=None if state in ("REJECTED", "LOST") else self._task_id(),
                progress=100 if charged else rng.randint(0, 90),
                attempts=rng.randint(0, 30),
                result_url=f"https://video.example/{self._tasks}.mp4" if charged else None,
                result_expires_at=ended + timedelta(hours=1) if charged else None,
                failure_reason=None if charged and state == "DELIVERED" else "it broke",
                delivered_message_id=(
                    rng.randrange(10**17, 10**18) if state == "DELIVERED" else None
                ),
                updated_at=ended,
                finished_at=ended,
            )
            self._entry(guild, user, "hold", PRICE, created, job=job, pool="period")
            kind = "commit" if charged else "release"
            self._entry(guild, user, kind, PRICE, ended, job=job, pool="period")

    def member(self, rows: int, *, guild: int, user: int, since: datetime) -> None:
        """`rows` ledger rows of one member: a grant now and then, the rest the hold and
        the commit (or release) of finished jobs."""
        grants = rows // 50
        jobs, odd = divmod(rows - grants, 2)
        for _ in range(grants + odd):
            amount = self.rng.choice((50, 100, 200))
            self._entry(guild, user, "grant", amount, self._when(since), actor="99", reason="bonus")
        self.finished(jobs, guild=guild, users=[user], since=since)

    def rows(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The job rows (ids 1, 2 … in the order they were made) and the ledger rows (in
        time order), ready for INSERT."""
        self.jobs.sort(key=lambda job: job["created_at"])
        for number, job in enumerate(self.jobs, start=1):
            job["id"] = number
        jobs = [tuple(_db(job[column]) for column in JOB_COLUMNS) for job in self.jobs]
        ledger = []
        for entry in sorted(self.ledger, key=lambda entry: entry["created_at"]):
            job = entry["job"]
            values = {
                **entry,
                "job_id": None if job is None else job["id"],
                "reason": entry["reason"] if job is None else f"job #{job['id']} ({MODEL})",
            }
            ledger.append(tuple(_db(values[column]) for column in LEDGER_COLUMNS))
        return jobs, ledger


def _db(value: Any) -> Any:
    return to_db(value) if isinstance(value, datetime) else value


# --- where the databases live -------------------------------------------------------------


@dataclass(slots=True)
class Place:
    name: str
    db: CountedDatabase
    path: Path | None = None  # SQLite
    schema: str | None = None  # PostgreSQL


class Backend:
    """Fresh databases on one backend: SQLite files in `folder`, or PostgreSQL schemas of
    their own on the server at `postgres` (every one dropped at the end)."""

    def __init__(self, folder: Path, postgres: str | None) -> None:
        self.folder = folder
        self.postgres = postgres
        self.run = uuid.uuid4().hex[:8]
        self._places: list[Place] = []
        self._schemas: set[str] = set()
        self._admin: asyncpg.Connection[Any] | None = None

    @property
    def name(self) -> str:
        return "PostgreSQL" if self.postgres else "SQLite"

    async def describe(self) -> str:
        if self.postgres is None:
            return f"SQLite {sqlite3.sqlite_version} files in {self.folder}"
        admin = await self._admin_connection()
        version = await admin.fetchval("SHOW server_version")
        return f"PostgreSQL {version}, schemas bench_costs_{self.run}_*"

    async def _admin_connection(self) -> asyncpg.Connection[Any]:
        assert self.postgres is not None
        if self._admin is None:
            self._admin = await asyncpg.connect(self.postgres)
        return self._admin

    async def create(self, name: str) -> Place:
        if self.postgres is None:
            path = self.folder / f"{name}.sqlite3"
            place = Place(name, CountedDatabase(await open_database(None, path)), path=path)
        else:
            schema = f"bench_costs_{self.run}_{name}"
            admin = await self._admin_connection()
            await admin.execute(f'CREATE SCHEMA "{schema}"')
            self._schemas.add(schema)  # dropped at the end, even if opening fails
            db = await open_database(
                self.postgres, self.folder / "unused", server_settings={"search_path": schema}
            )
            place = Place(name, CountedDatabase(db), schema=schema)
        self._places.append(place)
        return place

    async def insert(self, place: Place, history: History) -> None:
        jobs, ledger = history.rows()
        if place.path is not None:
            await asyncio.to_thread(_sqlite_insert, place.path, jobs, ledger)
            # Opened again, as after a restart: `open` analyzes the file, as the bot does.
            await place.db.inner.close()
            place.db.inner = await open_database(None, place.path)
            return
        assert self.postgres is not None and place.schema is not None
        conn = await asyncpg.connect(self.postgres, server_settings={"search_path": place.schema})
        try:
            async with conn.transaction():
                if jobs:
                    await conn.copy_records_to_table(
                        "jobs", records=jobs, columns=JOB_COLUMNS, schema_name=place.schema
                    )
                    await conn.execute(
                        "SELECT setval(pg_get_serial_sequence('jobs', 'id'), "
                        "(SELECT max(id) FROM jobs))"
                    )
                if ledger:
                    await conn.copy_records_to_table(
                        "ledger", records=ledger, columns=LEDGER_COLUMNS, schema_name=place.schema
                    )
            await conn.execute("ANALYZE")
        finally:
            await conn.close()

    async def discard(self, place: Place) -> None:
        if place in self._places:
            self._places.remove(place)
        await place.db.close()
        if place.path is not None:
            await asyncio.to_thread(_remove_sqlite, place.path)
        if place.schema is not None:
            await self._drop(place.schema)

    async def _drop(self, schema: str) -> None:
        admin = await self._admin_connection()
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        self._schemas.discard(schema)

    async def close(self) -> None:
        """Close every database still open and drop every schema made (even after an
        error)."""
        for place in list(self._places):
            with contextlib.suppress(Exception):
                await place.db.close()
        self._places.clear()
        for schema in list(self._schemas):
            await self._drop(schema)
        if self._admin is not None:
            await self._admin.close()


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _sqlite_insert(path: Path, jobs: list[tuple[Any, ...]], ledger: list[tuple[Any, ...]]) -> None:
    conn = sqlite3.connect(path, timeout=30)
    try:
        with conn:
            if jobs:
                marks = ", ".join("?" for _ in JOB_COLUMNS)
                conn.executemany(
                    f"INSERT INTO jobs ({', '.join(JOB_COLUMNS)}) VALUES ({marks})", jobs
                )
            if ledger:
                marks = ", ".join("?" for _ in LEDGER_COLUMNS)
                conn.executemany(
                    f"INSERT INTO ledger ({', '.join(LEDGER_COLUMNS)}) VALUES ({marks})", ledger
                )
    finally:
        conn.close()


# --- printing -----------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def ratio(value: float, base: float) -> float:
    return value / base if base > 0 else float("inf")


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    print(f"\n{title}")
    print("  " + "  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  " + "  ".join("-" * w for w in widths))
    for row in rows:
        print("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


@dataclass(slots=True)
class Verdicts:
    judged: bool  # False with --quick: the targets are for the full sizes
    lines: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, target: str, value: str, met: bool) -> str:
        verdict = ("ok" if met else "MISSED") if self.judged else "n/a (--quick)"
        self.lines.append((target, value, verdict))
        return verdict


async def timed(operation: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await operation()
    return time.perf_counter() - start


def rotated(items: Sequence[Any], turn: int) -> list[Any]:
    """The items, starting at a different one each turn (no place is always first)."""
    turn %= len(items)
    return [*items[turn:], *items[:turn]]


# --- 1. recovery --------------------------------------------------------------------------


@dataclass(slots=True)
class RecoveryRun:
    wall: float
    db: float
    counts: Counts
    spread: int


async def recovery_database(backend: Backend, name: str, count: int, seed: int) -> Place:
    place = await backend.create(name)
    history = History(seed, datetime.now(UTC))
    history.active(count, guilds=ACTIVE_GUILDS, due_share=0.5, future=(5, 600))
    await backend.insert(place, history)
    return place


async def part_recovery(
    backend: Backend, sizes: Sizes, settings: Settings, seed: int, verdicts: Verdicts
) -> None:
    rpm = settings.api_reads_per_minute
    counts = {"few": sizes.few_active, "many": sizes.active}
    runs: dict[str, list[RecoveryRun]] = {key: [] for key in counts}
    peaks: dict[str, list[int]] = {key: [] for key in counts}
    fresh: dict[str, tuple[float, int, int, int]] = {}
    due_name = ""
    for run in range(sizes.recovery_runs):
        for key in rotated(list(counts), run):
            # Timed, without tracemalloc (it slows every allocation).
            place = await recovery_database(backend, f"rec_{key}_{run}", counts[key], seed + run)
            clock = Clock()
            core = build_core(place.db, settings, clock)
            before = place.db.snapshot()
            place.db.profile = True  # a few dozen statements: the profiling costs nothing here
            start = time.perf_counter()
            recovery = await core.housekeeping.recover(rpm)
            wall = time.perf_counter() - start
            place.db.profile = False
            spent = place.db.counts.since(before)
            runs[key].append(RecoveryRun(wall, spent.seconds, spent, recovery.spread))
            if run == 0:
                fresh[key] = await fresh_job_after_restart(core, clock, counts[key])
                due_name = PollerWork(core).due_name
            await backend.discard(place)

            # Memory, in a run of its own on an identical database.
            place = await recovery_database(backend, f"mem_{key}_{run}", counts[key], seed + run)
            core = build_core(place.db, settings)
            gc.collect()
            tracemalloc.start()
            try:
                base = tracemalloc.get_traced_memory()[0]
                await core.housekeeping.recover(rpm)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            peaks[key].append(peak - base)
            await backend.discard(place)

    def median_of(key: str, pick: Callable[[RecoveryRun], float]) -> float:
        return statistics.median(pick(run) for run in runs[key])

    few, many = sizes.few_active, sizes.active
    rows = []
    for label, pick in (
        ("wall time", lambda run: run.wall),
        ("database time", lambda run: run.db),
    ):
        a, b = median_of("few", pick), median_of("many", pick)
        rows.append([label, ms(a), ms(b), f"{ratio(b, a):.1f}x"])
    peak_few = statistics.median(peaks["few"]) / 2**20
    peak_many = statistics.median(peaks["many"]) / 2**20
    rows.append(
        [
            "peak Python memory growth",
            f"{peak_few:.2f} MB",
            f"{peak_many:.2f} MB",
            f"{ratio(peak_many, peak_few):.1f}x",
        ]
    )
    counted = runs["many"][0].counts
    rows.append(
        [
            "statements / transactions",
            f"{runs['few'][0].counts.statements} / {runs['few'][0].counts.transactions}",
            f"{counted.statements} / {counted.transactions}",
            "",
        ]
    )
    rows.append(
        [
            "reads moved into the spread",
            str(runs["few"][0].spread),
            str(runs["many"][0].spread),
            "",
        ]
    )
    table(
        f"1. recovery at start: Housekeeping.recover({rpm:g} reads/min), median of "
        f"{sizes.recovery_runs} run(s); half the jobs due already, half due within 10 min",
        ["", f"{few} active jobs", f"{many:,} active jobs", "ratio"],
        rows,
    )
    base, loaded = runs["few"][0].counts, runs["many"][0].counts
    table(
        f"1a. recovery's database time by storage function (first run; {few} vs {many:,})",
        ["storage function (def line)", "calls", "time", f"calls ({many:,})", f"time ({many:,})"],
        [
            [
                name,
                str(int(base.where.get(name, [0, 0.0])[0])),
                ms(base.where.get(name, [0, 0.0])[1]),
                str(int(calls)),
                ms(seconds),
            ]
            for name, (calls, seconds) in sorted(loaded.where.items(), key=lambda x: -x[1][1])
        ],
    )
    db_many = median_of("many", lambda run: run.db)
    verdicts.add(
        f"recovery of {many:,} active jobs: peak memory growth < {RECOVERY_PEAK_MB:g} MB",
        f"{peak_many:.2f} MB (vs {peak_few:.2f} MB for {few})",
        peak_many < RECOVERY_PEAK_MB,
    )
    verdicts.add(
        f"recovery of {many:,} active jobs: database time < {RECOVERY_DB_SECONDS:g} s",
        f"{db_many:.3f} s (vs {median_of('few', lambda run: run.db):.3f} s for {few})",
        db_many < RECOVERY_DB_SECONDS,
    )

    rows = []
    for key in counts:
        first, due, position, moved = fresh[key]
        wait = (position - 1) * 60 / rpm
        rows.append(
            [
                f"{counts[key]:,}",
                f"+{first:.1f} s",
                f"{due:,}",
                f"{position:,}",
                f"{wait:,.0f} s",
                f"{moved:,}",
            ]
        )
    table(
        "1b. a job submitted right after that restart: its first read, and where it stands in "
        f"{due_name} at that moment",
        [
            "active jobs",
            "next_poll_at - submission",
            "jobs due then",
            "its position",
            f"reads before it at {rpm:g}/min",
            "of them due before it was submitted",
        ],
        rows,
    )
    position = fresh["many"][2]
    verdicts.add(
        f"a job submitted after recovering {many:,} is read on its own schedule "
        f"(not behind the backlog: position <= {POLL_BATCH}, one tick's reads)",
        f"position {position:,} of {fresh['many'][1]:,} due; about "
        f"{(position - 1) * 60 / rpm:,.0f} s of reads before it",
        position <= POLL_BATCH,
    )


async def fresh_job_after_restart(
    core: Core, clock: Clock, active: int
) -> tuple[float, int, int, int]:
    """Submit a job now; at its first read time: (that time - submission in seconds, jobs
    due, its 1-based position in due_jobs, due jobs that were due before the restart)."""
    submitted = clock()
    job = await core.submitting.submit(submit_request(NEW_GUILD, NEW_MEMBER))
    assert job.next_poll_at is not None, job
    first = (job.next_poll_at - submitted).total_seconds()
    clock.offset = job.next_poll_at - datetime.now(UTC) + timedelta(milliseconds=1)
    try:
        due = await PollerWork(core).reads_due(limit=active + 100)
    finally:
        clock.offset = timedelta(0)
    ids = [j.id for j in due]
    position = ids.index(job.id) + 1 if job.id in ids else -1
    kept = sum(1 for j in due if j.next_poll_at is not None and j.next_poll_at < submitted)
    return first, len(due), position, kept


# --- taking turns ---------------------------------------------------------------------------

# One operation on one database, under a label.
Turn = tuple[str, CountedDatabase, Callable[[], Awaitable[object]]]


async def take_turns(
    turns: Sequence[Turn], reps: int, warm: int
) -> tuple[dict[str, list[float]], dict[str, Counts]]:
    """Each operation `reps` times (after `warm` untimed ones), the databases taking turns
    in a rotating order; returns the times and the counts over all reps, by label."""
    for _label, _db, operation in turns:
        for _ in range(warm):
            await operation()
    before = {label: db.snapshot() for label, db, _ in turns}
    times: dict[str, list[float]] = {label: [] for label, _, _ in turns}
    for rep in range(reps):
        for label, _db, operation in rotated(turns, rep):
            times[label].append(await timed(operation))
    return times, {label: db.counts.since(before[label]) for label, db, _ in turns}


async def profiled(turns: Sequence[Turn], reps: int) -> dict[str, dict[str, float]]:
    """Each operation `reps` times more with the database time told by storage function
    (slower: only to see where it grows, never for the figures); by label, the median time
    of each function per operation."""
    samples: dict[str, dict[str, list[float]]] = {label: {} for label, _, _ in turns}
    for _, db, _ in turns:
        db.profile = True
    try:
        for rep in range(reps):
            for label, db, operation in rotated(turns, rep):
                before = db.snapshot()
                await operation()
                for name, (_, seconds) in db.counts.since(before).where.items():
                    samples[label].setdefault(name, []).append(seconds)
    finally:
        for _, db, _ in turns:
            db.profile = False
    return {
        label: {
            name: statistics.median(values + [0.0] * (reps - len(values)))
            for name, values in functions.items()
        }
        for label, functions in samples.items()
    }


DIAGNOSIS_REPS = 10  # a member's submissions count against their 50 at once


# --- 2. the poller's tick -----------------------------------------------------------------


async def part_tick(
    backend: Backend, sizes: Sizes, settings: Settings, seed: int, verdicts: Verdicts
) -> None:
    now = datetime.now(UTC)
    year_ago = now - timedelta(days=365)
    scenarios: list[tuple[str, History]] = []
    scenarios.append(("idle (0 jobs)", History(seed, now)))
    active = History(seed, now)
    active.active(sizes.active, guilds=ACTIVE_GUILDS, due_share=0.0, future=(1800, 3600))
    scenarios.append((f"{sizes.active:,} active, none due", active))
    both = History(seed, now)
    both.active(sizes.active, guilds=ACTIVE_GUILDS, due_share=0.0, future=(1800, 3600))
    both.finished(sizes.finished, guild=GUILD, users=OTHERS, since=year_ago)
    scenarios.append((f"... and {sizes.finished:,} finished", both))

    places: list[tuple[str, Place, PollerWork]] = []
    for number, (label, history) in enumerate(scenarios):
        place = await backend.create(f"tick_{number}")
        await backend.insert(place, history)
        places.append((label, place, PollerWork(build_core(place.db, settings))))
    started = datetime.now(UTC)
    steps: list[tuple[str, Callable[[PollerWork], Awaitable[None]]]] = [
        ("tick", lambda work: work.tick(started))
    ]
    if places[0][2].leases is not None:
        steps.append(("keep_alive (every 1/3 lease)", lambda work: work.keep_alive_now()))
    rows, grown = [], []
    for name, step in steps:
        turns: list[Turn] = [
            (label, place.db, lambda w=work, st=step: st(w)) for label, place, work in places
        ]
        times, counts = await take_turns(turns, sizes.reps, 3)
        base = statistics.median(times[places[0][0]])
        for label, _, _ in places:
            median = statistics.median(times[label])
            rows.append(
                [
                    name,
                    label,
                    ms(median),
                    f"{ratio(median, base):.2f}x",
                    counts[label].per(sizes.reps),
                ]
            )
        worst = max(places[1:], key=lambda place: statistics.median(times[place[0]]))[0]
        for label, _, _ in places[1:]:
            r = ratio(statistics.median(times[label]), base)
            verdicts.add(
                f"{name} with {label} within {GROWTH_RATIO}x of idle",
                f"{r:.2f}x",
                r <= GROWTH_RATIO,
            )
        profile = await profiled(turns, DIAGNOSIS_REPS)
        grown += growth_rows(name, profile[places[0][0]], profile[worst], worst, top=4)
    table(
        f"2. one poller tick's database work ({places[0][2].names}), median of {sizes.reps}; "
        "nothing due, so nothing is spawned",
        ["", "database", "time", "vs idle", "per call"],
        rows,
    )
    table(
        f"2b. where the database time grows (vs idle; median of {DIAGNOSIS_REPS}, profiled)",
        GROWTH_HEADERS,
        grown,
    )
    for _, place, _ in places:
        await backend.discard(place)


# --- 3. balance, typical price, quote, submit ---------------------------------------------


async def part_balance(
    backend: Backend, sizes: Sizes, settings: Settings, seed: int, verdicts: Verdicts
) -> None:
    # The middle of the current period, whenever the benchmark runs: the member's year of
    # rows then puts half a period's share in this one (run on a Monday, a weekly period
    # would otherwise hold none, and the balance would look cheaper than it is).
    clock = Clock()
    period = settings.default_period
    real = clock()
    start, end = period_start(period, real), period_end(period, real)
    if start is not None and end is not None:
        clock.offset = start + (end - start) / 2 - real
    now = clock()
    year_ago = now - timedelta(days=365)
    this_period = period_start(period, now) or year_ago
    few, many, jobs = sizes.few_ledger, sizes.ledger, sizes.finished

    def history(rows: int, finished: int, since: datetime) -> tuple[History, int]:
        """The history, and how many of the member's ledger rows are in this period."""
        made = History(seed, now)
        made.member(rows, guild=GUILD, user=MEMBER, since=since)
        in_period = sum(1 for entry in made.ledger if entry["created_at"] >= this_period)
        if finished:
            made.finished(finished, guild=GUILD, users=OTHERS, since=year_ago)
        return made, in_period

    scenarios = [
        (f"{few} rows, 0 jobs", *history(few, 0, year_ago), True),
        (f"{many:,} rows", *history(many, 0, year_ago), True),
        (f"{jobs:,} jobs", *history(few, jobs, year_ago), True),
        (f"{many:,} rows + {jobs:,} jobs", *history(many, jobs, year_ago), True),
        (f"{many:,} rows this {period} (info)", *history(many, 0, this_period), False),
    ]
    places: list[tuple[str, Place, Core, bool]] = []
    for number, (label, made, _, judged) in enumerate(scenarios):
        place = await backend.create(f"bal_{number}")
        await backend.insert(place, made)
        places.append((label, place, build_core(place.db, settings, clock), judged))

    def balance(core: Core) -> Awaitable[object]:
        return core.moderation.balance(GUILD, MEMBER)

    def typical(core: Core) -> Awaitable[object]:
        return core.moderation.typical_price(GUILD)

    def quote(core: Core) -> Awaitable[object]:
        return core.submitting.quote(GUILD, MEMBER, MODEL, PARAMS)

    def submit(core: Core) -> Awaitable[object]:
        return core.submitting.submit(submit_request(GUILD, MEMBER))

    # A member may run at most 50 jobs at once: warm-up, reps and diagnosis stay below.
    operations: list[tuple[str, Callable[[Core], Awaitable[object]], int, int]] = [
        ("balance", balance, sizes.reps, 3),
        ("typical price", typical, sizes.reps, 3),
        ("quote", quote, sizes.reps, 3),
        ("submit", submit, sizes.submit_reps, 2),
    ]
    rows, trips, grown = [], [], []
    for name, operation, reps, warm in operations:
        turns: list[Turn] = [
            (label, place.db, lambda c=core, op=operation: op(c))
            for label, place, core, _ in places
        ]
        times, counts = await take_turns(turns, reps, warm)
        base = statistics.median(times[places[0][0]])
        row = [f"{name} (median of {reps})", ms(base)]
        worst, worst_label = 0.0, places[1][0]
        for label, _, _, judged in places[1:]:
            r = ratio(statistics.median(times[label]), base)
            row.append(f"{ms(statistics.median(times[label]))} ({r:.2f}x)")
            if judged and r > worst:
                worst, worst_label = r, label
        rows.append(row)
        first = counts[places[0][0]]
        same = all(c.round_trips == first.round_trips for c in counts.values())
        trips.append([name, first.per(reps), "same in every database" if same else "DIFFERS"])
        verdicts.add(
            f"{name}: with {many:,} ledger rows and/or {jobs:,} finished jobs within "
            f"{GROWTH_RATIO}x of the empty history",
            f"worst {worst:.2f}x ({worst_label})",
            worst <= GROWTH_RATIO,
        )
        profile = await profiled(turns, DIAGNOSIS_REPS)
        base_profile = profile[places[0][0]]
        grown += growth_rows(name, base_profile, profile[worst_label], worst_label)
        info = places[-1][0]
        grown += growth_rows(name, base_profile, profile[info], info, top=1)
    in_period = ", ".join(f"{count:,}" for _, _, count, _ in scenarios)
    table(
        f"3. a member's costs: member {MEMBER} in guild {GUILD} (period: {period}); ledger rows "
        f"spread over a year, of them in this {period}: {in_period}; ratios vs the first column",
        ["operation", *(label for label, *_ in places)],
        rows,
    )
    table("3b. database work of each (first column)", ["operation", "per call", ""], trips)
    table(
        f"3c. where the database time grows (vs the first column; median of {DIAGNOSIS_REPS}, "
        "profiled)",
        GROWTH_HEADERS,
        grown,
    )
    for _, place, _, _ in places:
        await backend.discard(place)


# --- 4. submissions per second ------------------------------------------------------------

PLAIN_COLUMNS = (
    "guild_id",
    "channel_id",
    "user_id",
    "model",
    "params",
    "inputs",
    "price",
    "off_peak",
    "state",
    "card_state",
    "created_at",
    "updated_at",
)
PLAIN_INSERT = (
    f"INSERT INTO jobs ({', '.join(PLAIN_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in PLAIN_COLUMNS)})"
)
PLAIN_PARAMS_JSON = json.dumps(PARAMS, separators=(",", ":"), sort_keys=True)


async def plain_insert(db: CountedDatabase, n: int) -> None:
    """One transaction, one INSERT of a job row: the least a submission could cost."""
    now = to_db(datetime.now(UTC))
    async with db.transaction() as store:
        await store._conn.execute(
            PLAIN_INSERT,
            [
                PLAIN_GUILD,
                2,
                20_000 + n % RATE_MEMBERS,
                MODEL,
                PLAIN_PARAMS_JSON,
                INPUTS_JSON,
                PRICE,
                0,
                "SUBMITTING",
                "pending",
                now,
                now,
            ],
        )


async def run_block(
    operation: Callable[[int], Awaitable[object]], first: int, count: int, concurrency: int
) -> float:
    numbers = iter(range(first, first + count))

    async def worker() -> None:
        for n in numbers:
            await operation(n)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start


async def part_rate(backend: Backend, sizes: Sizes, settings: Settings, verdicts: Verdicts) -> None:
    place = await backend.create("rate")
    db = place.db
    core = build_core(db, settings)

    async def submit(n: int) -> None:
        await core.submitting.submit(submit_request(RATE_GUILD, 20_000 + n % RATE_MEMBERS))

    async def insert(n: int) -> None:
        await plain_insert(db, n)

    kinds = [("submit", submit), ("insert", insert)]
    for _, operation in kinds:  # warm up
        await run_block(operation, 10_000_000, 20, 1)
    rows = []
    numbered = 0
    one_by_one: dict[str, list[float]] = {name: [0.0, 0.0] for name, _ in kinds}  # wall, db
    trips: dict[str, Counts] = {}
    for concurrency in (1, sizes.concurrency):
        spent = {name: 0.0 for name, _ in kinds}
        blocks = max(1, sizes.submissions // sizes.block)
        for block in range(blocks):
            for name, operation in rotated(kinds, block):
                before = db.snapshot()
                wall = await run_block(operation, numbered, sizes.block, concurrency)
                spent[name] += wall
                if concurrency == 1:
                    trips[name] = db.counts.since(before)
                    one_by_one[name][0] += wall
                    one_by_one[name][1] += trips[name].seconds
            numbered += sizes.block
        done = blocks * sizes.block
        submit_rate, insert_rate = done / spent["submit"], done / spent["insert"]
        share = submit_rate / insert_rate
        rows.append(
            [
                str(concurrency),
                f"{submit_rate:,.0f}/s",
                f"{insert_rate:,.0f}/s",
                f"{share:.2f} (1/{1 / share:.1f})",
            ]
        )
        verdicts.add(
            f"submissions/s >= 1/3 of plain one-row insert transactions/s "
            f"({concurrency} at a time)",
            f"{submit_rate:,.0f}/s vs {insert_rate:,.0f}/s = {share:.2f}",
            share >= RATE_SHARE,
        )
    table(
        f"4. submissions per second (Core.submitting.submit, instant fake API, "
        f"{RATE_MEMBERS} members of one guild) vs plain one-row INSERT transactions, "
        f"{sizes.submissions:,} of each per row, alternating blocks of {sizes.block}",
        ["at a time", "submissions", "plain inserts", "share"],
        rows,
    )
    done = max(1, sizes.submissions // sizes.block) * sizes.block
    split = []
    for label, name in (("submission", "submit"), ("plain insert", "insert")):
        wall, waited = (value / done for value in one_by_one[name])
        split.append(
            [
                label,
                trips[name].per(sizes.block),
                f"{wall * 1e6:,.0f} us",
                f"{waited * 1e6:,.0f} us",
                f"{(wall - waited) * 1e6:,.0f} us",
            ]
        )
    table(
        "4b. per operation, one at a time: database round trips, and the time split",
        ["", "database work", "wall", "awaiting the database", "the rest (Python)"],
        split,
    )
    db.profile = True
    before = db.snapshot()
    await run_block(submit, numbered, sizes.block, 1)
    profile = db.counts.since(before)
    db.profile = False
    ranked = sorted(profile.where.items(), key=lambda item: -item[1][1])
    table(
        f"4c. a submission's database time by storage function (mean of {sizes.block}, profiled)",
        ["storage function (def line)", "calls", "time"],
        [
            [name, f"{calls / sizes.block:.1f}", f"{seconds / sizes.block * 1e6:,.0f} us"]
            for name, (calls, seconds) in ranked
        ],
    )
    await backend.discard(place)


# --- main ---------------------------------------------------------------------------------


def pin_to_one_cpu() -> str:
    """Keep the event loop and every database thread on one CPU. Spread over CPUs, each
    hand-over between the loop and an aiosqlite connection's thread costs 0.2-0.4 ms more
    or less at random, per connection and for minutes at a time: two identical databases
    then differ by 2x, which swamps what is measured here."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity here)"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})  # the threads started from now on inherit it
    return f"pinned to CPU {cpu}"


async def main(args: argparse.Namespace) -> None:
    sizes = QUICK if args.quick else Sizes()
    pinned = "not pinned (--no-pin)" if args.no_pin else pin_to_one_cpu()
    parts = {int(p) for p in args.parts.split(",") if p.strip()}
    settings = make_settings()
    verdicts = Verdicts(judged=not args.quick)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench_costs_") as tmp:
        backend = Backend(Path(tmp), args.postgres)
        try:
            print(
                f"bench_costs on {await backend.describe()}; Python {platform.python_version()}; "
                f"seed {args.seed}; {'quick' if args.quick else 'full'} sizes; {pinned}"
            )
            steps: list[tuple[int, Callable[[], Awaitable[None]]]] = [
                (1, lambda: part_recovery(backend, sizes, settings, args.seed, verdicts)),
                (2, lambda: part_tick(backend, sizes, settings, args.seed, verdicts)),
                (3, lambda: part_balance(backend, sizes, settings, args.seed, verdicts)),
                (4, lambda: part_rate(backend, sizes, settings, verdicts)),
            ]
            for number, step in steps:
                if number in parts:
                    start = time.perf_counter()
                    await step()
                    print(f"  (part {number}: {time.perf_counter() - start:.1f} s)")
        finally:
            await backend.close()
    table(
        f"targets ({backend.name})",
        ["target", "measured", "verdict"],
        [list(line) for line in verdicts.lines],
    )
    print(f"\ntotal {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes (targets not judged)")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--parts", default="1,2,3,4", help="which parts to run, e.g. 1,3")
    parser.add_argument("--dir", help="where the SQLite files go (default: a temporary folder)")
    parser.add_argument("--postgres", metavar="URL", help="run on this PostgreSQL server")
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin the process to one CPU (noisier)"
    )
    asyncio.run(main(parser.parse_args()))
