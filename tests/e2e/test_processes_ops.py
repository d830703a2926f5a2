"""Real `python -m bot` processes and the operating settings: shard settings Discord refuses
stop the bot with one line (exit 2); `sync` run beside a serving bot leaves its metrics
port alone."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

from tests.e2e.helpers import process_env
from tests.fakediscord import FakeDiscord


async def run_to_the_end(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,  # no stray .env is read
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, stderr.decode(errors="replace")


async def test_too_few_shards_for_discord_stop_the_bot_with_one_line(tmp_path: Path) -> None:
    async with FakeDiscord(shard_count=2) as fake:
        fake.add_guild("Club", shard_id=1)
        env = process_env(fake, tmp_path, SHARD_COUNT="1")
        code, stderr = await run_to_the_end(env, tmp_path, "run")
    assert code == 2, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("configuration error: SHARD_COUNT=1 is too few"), stderr[-3000:]
    assert "4011" in last
    assert "Traceback" not in stderr
    assert [c.close_code for c in fake.gateway_connections] == [4011]


async def test_sync_beside_a_serving_bot_does_not_take_its_metrics_port(tmp_path: Path) -> None:
    async with FakeDiscord() as fake:
        fake.add_guild("Club")
        with socket.socket() as serving:  # the running bot's /metrics holds the port
            serving.bind(("127.0.0.1", 0))
            serving.listen()
            port = serving.getsockname()[1]
            env = process_env(fake, tmp_path, METRICS_PORT=str(port))
            code, stderr = await run_to_the_end(env, tmp_path, "sync")
    assert code == 0, stderr[-3000:]
    assert len(fake.command_syncs) == 1
    assert "metrics of" not in stderr
