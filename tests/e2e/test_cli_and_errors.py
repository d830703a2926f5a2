"""`python -m bot sync`, the database guard at start, dev-guild sync, and the incident id."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import World
from tests.fakediscord import FakeDiscord

ROOT = Path(__file__).resolve().parents[2]


def bot_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "NOVITA_"))}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "DISCORD_TOKEN": "fake-bot-token",
            "NOVITA_SIMULATE": "1",
            "DATABASE_PATH": str(tmp_path / "bot.sqlite3"),
            "HEALTH_FILE": str(tmp_path / "health"),
        }
    )
    env.update(extra)
    return env


async def run_bot(tmp_path: Path, *args: str, **env: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=tmp_path,
        env=bot_env(tmp_path, **env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, err.decode()


async def test_sync_command_pushes_commands_and_exits(tmp_path: Path) -> None:
    async with FakeDiscord() as fake:
        fake.add_guild("Club")
        for attempt in (1, 2):  # forced: the second run syncs although nothing changed
            code, err = await run_bot(tmp_path, "sync", DISCORD_API_BASE_URL=fake.base_url)
            assert code == 0, err
            assert len(fake.command_syncs) == attempt
        names = {command["name"] for command in fake.global_commands}
        assert names == {"video", "quota", "quota-admin", "video-settings"}
        assert "fake-bot-token" not in err


async def test_database_newer_than_the_code_stops_start(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA user_version = 999")
    before = path.read_bytes()
    code, err = await run_bot(tmp_path, "run")
    assert code == 2
    assert "database error" in err and "999" in err
    assert "Traceback" not in err
    assert path.read_bytes() == before  # never replaced


async def test_not_a_database_stops_start(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    code, err = await run_bot(tmp_path, "run")
    assert code == 2 and "database error" in err and "Traceback" not in err
    assert path.read_bytes() == b"this is not a database" * 100


async def test_dev_guild_gets_commands_at_once(world: World) -> None:
    world.bot.settings = world.settings.model_copy(update={"dev_guild_id": world.guild.id})
    assert await world.bot.sync_commands()
    names = {command["name"] for command in world.fake.guild_commands[world.guild.id]}
    assert names == {"video", "quota", "quota-admin", "video-settings"}
    # Unchanged commands are not synced again.
    syncs = len(world.fake.command_syncs)
    assert not await world.bot.sync_commands()
    assert len(world.fake.command_syncs) == syncs


async def test_unexpected_error_shows_an_incident_id(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*_args: object, **_kwargs: object) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(world.core.lifecycle, "history", broken)
    with caplog.at_level(logging.ERROR, logger="bot.discord.tree"):
        interaction = await world.slash("video history")
    [text] = interaction.texts
    assert "incident `" in text and "boom" not in text
    incident = text.split("`")[1]
    [record] = [r for r in caplog.records if incident in r.getMessage()]
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError


async def test_a_poller_that_dies_is_restarted(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    from storage.models import JobState
    from tests.e2e.conftest import image

    task = world.bot._poller_task
    assert task is not None
    with caplog.at_level(logging.CRITICAL, logger="bot.discord.bot"):
        task.cancel()
        await asyncio.sleep(0.1)
    assert world.bot._poller_task is not task and not world.bot._poller_task.done()
    assert any("restarting" in r.getMessage() for r in caplog.records)
    await world.slash("video animate", attachments={"image": image()})
    await world.wait_job(1, lambda j: j.state is JobState.DELIVERED, timeout=15)


async def test_shutdown_takes_no_new_commands_and_lets_a_submission_finish(world: World) -> None:
    from storage.models import JobState
    from tests.e2e.conftest import image

    world.sim.delay_next("submit", seconds=1.0)
    first = await world.fake.invoke_slash(
        world.guild.id,
        world.channel.id,
        world.member,
        "video animate",
        attachments={"image": image()},
    )
    await world.fake.wait_until(lambda: len(world.sim.submissions) == 1, timeout=5)
    closing = asyncio.create_task(world.bot.close())
    await asyncio.sleep(0.1)
    late = await world.fake.invoke_slash(
        world.guild.id,
        world.channel.id,
        world.member,
        "video animate",
        attachments={"image": image()},
    )
    await late.wait_message(timeout=5)
    assert "restarting" in " ".join(late.texts)
    await asyncio.wait_for(closing, timeout=30)
    # The submission in flight when shutdown began was recorded, not cut off.
    [job] = await world.jobs()
    assert job.state is JobState.QUEUED and job.task_id is not None
    assert "Job #1" in " ".join(first.texts)
    assert len(world.sim.submissions) == 1
