"""The harness itself: a bot that cannot start is reported with its own words, and a bot
that dies by itself is never mistaken for one the drill killed."""

from __future__ import annotations

import os
import signal

import pytest

from tests.drills.harness import BotDied, Cluster


async def test_a_bot_that_cannot_start_is_reported_with_its_log(cluster: Cluster) -> None:
    bot = cluster.add_bot(POLL_MIN_SECONDS="5", POLL_MAX_SECONDS="1")
    with pytest.raises(BotDied, match="POLL_MIN_SECONDS must not exceed POLL_MAX_SECONDS"):
        await cluster.start(bot)
    assert bot.exits == [] and bot.process is not None and bot.process.returncode == 2
    assert cluster.unexpected_exits() == ["bot exited by itself with 2"]


async def test_a_killed_bot_is_expected_one_that_dies_is_not(cluster: Cluster) -> None:
    bot = await cluster.start()
    await bot.kill()
    assert bot.exits == [-signal.SIGKILL] and cluster.unexpected_exits() == []
    await cluster.start(bot)
    os.kill(bot.pid, signal.SIGKILL)  # not through the harness: a crash of its own
    await cluster.fake.wait_until(
        lambda: bot.process is not None and bot.process.returncode is not None, 5
    )
    with pytest.raises(BotDied, match="exited by itself"):
        await cluster.wait_jobs(lambda jobs: False, "anything", timeout=5)
    assert len(bot.logs) == 2 and all(log.exists() for log in bot.logs)
