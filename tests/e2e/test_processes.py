"""Real `python -m bot` processes and their store: SQLite is held by one process (a second
one on the same file stops at start, exit 2, one line); with DATABASE_URL the bot runs on
PostgreSQL, and its password never reaches a log line."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import JobState
from storage.postgres import PostgresDatabase
from tests.backends import PgSchema, postgres_url
from tests.e2e.helpers import process_env, video_from_a_bot_process
from tests.fakediscord import FakeDiscord


async def start_bot(env: dict[str, str], cwd: Path, stderr: Path) -> asyncio.subprocess.Process:
    with stderr.open("wb") as sink:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            cwd=cwd,  # no stray .env is read
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=sink,
        )


async def stop(process: asyncio.subprocess.Process) -> int:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            process.kill()
            return await process.wait()
    return process.returncode


def read(path: Path) -> str:
    return path.read_text()


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server


async def test_a_second_bot_on_the_same_sqlite_file_stops_at_start(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    guild = fake.add_guild("Film Club")
    member = fake.add_member(guild.id, "alice")
    env = process_env(fake, tmp_path)
    first = await start_bot(env, tmp_path, tmp_path / "first.log")
    try:
        await fake.wait_until(
            lambda: fake.connection is not None and bool(fake.command_syncs),
            timeout=30,
            what="the first bot to connect",
        )
        second = await start_bot(env, tmp_path, tmp_path / "second.log")
        code = await asyncio.wait_for(second.wait(), timeout=30)
        lines = read(tmp_path / "second.log").strip().splitlines()
        assert code == 2, lines
        assert len(lines) == 1, lines
        assert "SQLite is the one-process store" in lines[0]
        assert "DATABASE_URL" in lines[0]
        assert str(tmp_path / "bot.sqlite3") in lines[0]
        assert f"pid {first.pid}" in lines[0]

        # The first one never noticed: it still serves.
        assert first.returncode is None
        interaction = await fake.invoke_slash(
            guild.id, guild.default_channel_id, member, "quota", options={}
        )
        await interaction.wait_message(timeout=10)
    finally:
        assert await stop(first) == 0, read(tmp_path / "first.log")[-3000:]


async def test_the_bot_runs_on_postgresql_and_never_logs_its_password(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    server = await postgres_url()
    password = "pg-pass-5e1d9a"  # the test server trusts loopback, so any password works
    with_password = server.replace("://postgres@", f"://postgres:{password}@", 1)
    assert password in with_password, "TEST_DATABASE_URL must name the user postgres@"
    guild = fake.add_guild("Film Club")
    member = fake.add_member(guild.id, "alice")
    async with PgSchema.create(server) as schema:
        env = process_env(
            fake,
            tmp_path,
            DATABASE_URL=f"{with_password}?search_path={schema.name}",
            LOG_LEVEL="DEBUG",  # the most a log can say: still no password
        )
        bot = await start_bot(env, tmp_path, tmp_path / "bot.log")
        try:
            video = await video_from_a_bot_process(fake, guild, member)
        finally:
            code = await stop(bot)
        log = read(tmp_path / "bot.log")
        assert code == 0, log[-3000:]
        assert password not in log
        assert "schema version" in log  # it did log where it opened the database
        assert not (tmp_path / "bot.sqlite3").exists()  # and it never made a SQLite file

        db = await PostgresDatabase.open(server, server_settings=schema.server_settings)
        try:
            async with db.read() as store:
                job = await store.get_job(1)
        finally:
            await db.close()
        assert job is not None and job.state is JobState.DELIVERED
        assert job.delivered_message_id == video.id
