"""Real bot processes against the fake Discord and the video API simulator, killed at will.

A `Cluster` owns what outlives every bot process: the fake Discord and the simulator (both
in the pytest process, on loopback), the working folder and the database. It starts any
number of `BotProcess`es, each a real `python -m bot run` with its own environment, its
own stderr log file per life, its own health file and download folder, and the shards it
serves (so several processes can run at once, one gateway shard each):

    cluster = Cluster(fake, sim, tmp_path)
    bot = await cluster.start()                      # connected: its shards are READY
    ... a fault knob holds a request; wait on a fact (a request recorded, a row written) ...
    await bot.kill()                                 # SIGKILL: no clean-up of any kind
    await cluster.start(bot)                         # same database, same settings
    await cluster.settle()                           # every job terminal, nothing moving
    report = await cluster.check()                   # tests/drills/checks.py

Every process is killed when the cluster closes (the fixture's finalizer), whatever
happened; `log_tails()` is what a failing test prints.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.simulator import Simulator
from storage import Database, SQLiteDatabase
from storage.models import Job, JobState
from tests.drills.checks import Report, check
from tests.e2e.conftest import image
from tests.fakediscord import FakeChannel, FakeDiscord, FakeGuild, FakeInteraction, FakeMember

REPO = Path(__file__).resolve().parents[2]

# Fast settings for drills: short polls, no card-edit interval, budgets that never bind.
FAST_SETTINGS: dict[str, str] = {
    "POLL_MIN_SECONDS": "0.05",
    "POLL_MAX_SECONDS": "0.5",
    "OFF_PEAK_POLL_SECONDS": "0.5",
    "CARD_EDIT_INTERVAL_SECONDS": "0",
    "DELIVERY_RETRY_SECONDS": "0.2",
    "API_SUBMITS_PER_MINUTE": "6000",
    "API_READS_PER_MINUTE": "6000",
    "SUBMIT_TIMEOUT_SECONDS": "5",
    "REQUEST_TIMEOUT_SECONDS": "5",
    "DEFAULT_ALLOWANCE": "100",
    "DEFAULT_PERIOD": "week",
    "LOG_LEVEL": "INFO",
}

# Backstop for an interpreter that exits without running the fixtures' finalizers.
_LIVE_PIDS: set[int] = set()


@atexit.register
def _kill_leftovers() -> None:
    for pid in list(_LIVE_PIDS):
        try:
            ended, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue  # reaped already: the number may belong to someone else by now
        if ended == 0:  # our child, still running
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


class BotDied(RuntimeError):
    """A bot process ended on its own while the harness waited for it."""


@dataclass
class BotProcess:
    """One bot: its settings and shards, and the OS process of its current life (if any)."""

    name: str
    env: dict[str, str]
    workdir: Path
    shards: tuple[int, ...] = (0,)
    process: asyncio.subprocess.Process | None = None
    lives: int = 0  # how many times it was started
    logs: list[Path] = field(default_factory=list)  # stderr of each life, oldest first
    kills: int = 0  # lives ended by SIGKILL
    exits: list[int] = field(default_factory=list)  # return codes of ended lives
    _expected_end: bool = False

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def spawn(self) -> None:
        """Start a new life: `python -m bot run` in the bot's folder, stderr to a log file."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.lives += 1
        log = self.workdir / f"{self.name}.life{self.lives}.stderr.log"
        self.logs.append(log)
        self._expected_end = False
        with log.open("wb") as stderr:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "run",
                cwd=self.workdir,  # no stray .env is read
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr,
            )
        _LIVE_PIDS.add(self.process.pid)

    async def kill(self) -> int:
        """SIGKILL: the process ends mid-step, with no shutdown of any kind."""
        if not self.running:
            raise RuntimeError(f"{self.name} is not running")
        self._expected_end = True
        os.kill(self.pid, signal.SIGKILL)
        self.kills += 1
        return await self._reap()

    async def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the bot's own clean shutdown."""
        if not self.running:
            raise RuntimeError(f"{self.name} is not running")
        self._expected_end = True
        os.kill(self.pid, signal.SIGTERM)
        try:
            return await asyncio.wait_for(self._reap(), timeout)
        except TimeoutError:
            os.kill(self.pid, signal.SIGKILL)
            await self._reap()
            raise

    async def _reap(self) -> int:
        assert self.process is not None
        code = await self.process.wait()
        _LIVE_PIDS.discard(self.process.pid)
        self.exits.append(code)
        return code

    async def command(self, *args: str, timeout: float = 30.0) -> tuple[int, str]:
        """Run `python -m bot <args>` with this bot's settings, in its folder (e.g.
        `health`): its exit status and what it printed (stdout and stderr)."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            *args,
            cwd=self.workdir,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        assert process.returncode is not None
        return process.returncode, output.decode(errors="replace")

    @property
    def died_unexpectedly(self) -> bool:
        """It ended without the harness killing or stopping it."""
        return (
            self.process is not None
            and self.process.returncode is not None
            and not self._expected_end
        )

    def log_text(self) -> str:
        return "".join(
            f"----- {path.name} -----\n{path.read_text(errors='replace')}"
            for path in self.logs
            if path.exists()
        )

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for path in self.logs:
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"----- {path.name} (last {len(tail)} lines) -----")
                parts.extend(tail)
        return "\n".join(parts)

    def log_lines(self, *needles: str) -> list[str]:
        """Every log line (of every life) that contains all of `needles`."""
        return [
            line
            for line in self.log_text().splitlines()
            if all(needle in line for needle in needles)
        ]


@dataclass
class Server:
    """A guild with one channel and its members, as the drills and the soak use them."""

    guild: FakeGuild
    channel: FakeChannel
    members: list[FakeMember]


class Cluster:
    """The fake Discord, the simulator, one database, and the bot processes over them."""

    def __init__(
        self,
        fake: FakeDiscord,
        sim: Simulator,
        workdir: Path,
        *,
        settings: Mapping[str, str] | None = None,
        open_database: Callable[[], Awaitable[Database]] | None = None,
    ) -> None:
        self.fake = fake
        self.sim = sim
        self.workdir = workdir
        self.database_path = workdir / "bot.sqlite3"
        self.settings = {**FAST_SETTINGS, **(settings or {})}
        self.bots: dict[str, BotProcess] = {}
        # How the test opens the bots' database: the SQLite file by default; a cluster on
        # PostgreSQL (DATABASE_URL in `settings`) passes its own.
        self._open_database = open_database or self._open_sqlite
        self._db: Database | None = None
        # Told every report the checker makes (the fixtures keep the last for the summary).
        self.on_report: Callable[[Report], None] | None = None

    # --- the world ----------------------------------------------------------------------

    def add_server(
        self, name: str, members: int | Iterable[str] = 1, *, shard_id: int | None = None
    ) -> Server:
        guild = self.fake.add_guild(name, shard_id=shard_id)
        names = (
            [f"{name.lower()}-m{i}" for i in range(members)]
            if isinstance(members, int)
            else members
        )
        joined = [self.fake.add_member(guild.id, member) for member in names]
        return Server(guild, guild.channel_named("general"), joined)

    async def request_video(
        self, server: Server, member: FakeMember, prompt: str, **options: Any
    ) -> FakeInteraction:
        """`/video animate` with an image, as `member` (returns once the fake has sent it)."""
        return await self.fake.invoke_slash(
            server.guild.id,
            server.channel.id,
            member,
            "video animate",
            options={"prompt": prompt, **options},
            attachments={"image": image()},
        )

    # --- processes ----------------------------------------------------------------------

    def environment(self, name: str, **overrides: str) -> dict[str, str]:
        """What a bot process is started with: the cluster's settings, then `overrides`."""
        folder = self.workdir / name
        return {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.workdir),
            "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1",
            "DISCORD_TOKEN": self.fake.token,
            "DISCORD_API_BASE_URL": self.fake.base_url,
            "NOVITA_BASE_URL": self.sim.base_url,
            "NOVITA_API_KEY": self.sim.api_key,
            "DATABASE_PATH": str(self.database_path),
            "HEALTH_FILE": str(folder / "health"),
            "DOWNLOAD_DIR": str(folder / "downloads"),
            **self.settings,
            **overrides,
        }

    def add_bot(
        self, name: str = "bot", *, shards: tuple[int, ...] = (0,), **env: str
    ) -> BotProcess:
        """A bot process (not started yet) serving `shards`, with extra settings `env`.

        When the fake Discord has several shards, the process is told which it serves
        (SHARD_COUNT, SHARD_IDS), unless `env` says otherwise."""
        if name in self.bots:
            raise ValueError(f"there is already a bot named {name}")
        folder = self.workdir / name
        folder.mkdir(parents=True, exist_ok=True)
        sharding: dict[str, str] = {}
        if self.fake.shard_count > 1:
            sharding = {
                "SHARD_COUNT": str(self.fake.shard_count),
                "SHARD_IDS": ",".join(str(shard) for shard in shards),
            }
        bot = BotProcess(name, self.environment(name, **{**sharding, **env}), folder, shards)
        self.bots[name] = bot
        return bot

    async def start(self, bot: BotProcess | None = None, *, timeout: float = 30.0) -> BotProcess:
        """Start `bot` (a new default one if None, or its next life) and wait until each of
        its shards has a new, ready gateway connection and the bot has processed READY and
        every GUILD_CREATE."""
        if bot is None:
            bot = self.add_bot()
        mark = len(self.fake.gateway_connections)
        await bot.spawn()

        def connected() -> bool:
            if not bot.running:
                return True  # stop waiting; reported below
            fresh = self.fake.gateway_connections[mark:]
            return all(
                any(c.shard_id == shard and c.ready.is_set() and not c.closed for c in fresh)
                for shard in bot.shards
            )

        try:
            await self.fake.wait_until(connected, timeout, f"{bot.name} to connect")
        except TimeoutError:
            raise TimeoutError(f"{bot.name} did not connect\n{bot.log_tail()}") from None
        if not bot.running:
            raise BotDied(
                f"{bot.name} exited with {bot.process and bot.process.returncode}\n{bot.log_tail()}"
            )
        for shard in bot.shards:
            await self.fake.flush(shard_id=shard, timeout=10)
        return bot

    async def close(self) -> None:
        """Kill every process still running (the fixture's finalizer), then close the db."""
        for bot in self.bots.values():
            if bot.running:
                with contextlib.suppress(ProcessLookupError, RuntimeError):
                    await bot.kill()
            if bot.process is not None:
                _LIVE_PIDS.discard(bot.process.pid)
        if self._db is not None:
            await self._db.close()
            self._db = None

    def unexpected_exits(self) -> list[str]:
        return [
            f"{bot.name} exited by itself with {bot.process and bot.process.returncode}"
            for bot in self.bots.values()
            if bot.died_unexpectedly
        ]

    def log_tails(self, lines: int = 40) -> str:
        return "\n".join(bot.log_tail(lines) for bot in self.bots.values())

    def log_lines(self, *needles: str) -> list[str]:
        return [line for bot in self.bots.values() for line in bot.log_lines(*needles)]

    # --- the database -------------------------------------------------------------------

    async def database(self) -> Database:
        """The bots' database, opened once by the test (after a bot created and migrated it)."""
        if self._db is None:
            self._db = await self._open_database()
        return self._db

    async def _open_sqlite(self) -> Database:
        # WAL mode: the test reads committed rows while bots write.
        if not self.database_path.exists():
            raise RuntimeError("no database yet: start a bot first")
        return await SQLiteDatabase.open(self.database_path)

    async def check(self) -> Report:
        """The shared checker over everything the run left behind, plus any bot process
        that ended by itself."""
        report = await check(await self.database(), self.fake, self.sim)
        report.problems += self.unexpected_exits()
        if self.on_report is not None:
            self.on_report(report)
        return report

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Any]:
        db = await self.database()
        async with db.read() as store:
            yield store

    async def jobs(self) -> list[Job]:
        async with self.read() as store:
            jobs: list[Job] = await store.jobs_in_states(list(JobState))
            return jobs

    async def wait_jobs(
        self,
        predicate: Callable[[list[Job]], bool],
        what: str,
        timeout: float = 15.0,
        interval: float = 0.02,
    ) -> list[Job]:
        """Poll the database until `predicate(every job)` holds; the jobs then."""
        deadline = time.monotonic() + timeout
        while True:
            jobs = await self.jobs()
            if predicate(jobs):
                return jobs
            self._check_alive(what)
            if time.monotonic() > deadline:
                states = ", ".join(f"#{j.id} {j.state.value}" for j in jobs) or "no jobs"
                raise TimeoutError(
                    f"timed out after {timeout}s waiting for {what} ({states})\n{self.log_tails()}"
                )
            await asyncio.sleep(interval)

    async def wait_job(
        self, predicate: Callable[[Job], bool], what: str, timeout: float = 15.0
    ) -> Job:
        """The first job (by id) for which `predicate` holds, once one does."""
        jobs = await self.wait_jobs(lambda js: any(predicate(j) for j in js), what, timeout)
        return next(j for j in jobs if predicate(j))

    async def wait_for(
        self, predicate: Callable[[], bool], what: str, timeout: float = 15.0
    ) -> None:
        """Wait on a fact of the fake or the simulator (a request recorded, a hold that
        holds something), and fail early if a bot died meanwhile."""
        deadline = time.monotonic() + timeout
        while not predicate():
            self._check_alive(what)
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"timed out after {timeout}s waiting for {what}\n{self.log_tails()}"
                )
            with contextlib.suppress(TimeoutError):
                await self.fake.wait_until(predicate, 0.05, what)

    def _check_alive(self, what: str) -> None:
        dead = self.unexpected_exits()
        if dead:
            raise BotDied(f"while waiting for {what}: {'; '.join(dead)}\n{self.log_tails()}")

    async def settle(self, timeout: float = 30.0, quiet: float = 0.5) -> bool:
        """Wait until every job is terminal and neither Discord nor the video API has heard
        from a bot for `quiet` seconds. False if that did not happen in `timeout` (the
        checker then says what is left)."""
        deadline = time.monotonic() + timeout
        counts = (-1, -1)
        still_since = time.monotonic()
        while time.monotonic() < deadline:
            self._check_alive("the jobs to settle")
            jobs = await self.jobs()
            now_counts = (len(self.fake.requests), len(self.sim.requests))
            if now_counts != counts or not all(j.state.is_terminal for j in jobs):
                counts, still_since = now_counts, time.monotonic()
            elif time.monotonic() - still_since >= quiet:
                return True
            await asyncio.sleep(0.05)
        return False
