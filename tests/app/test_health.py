"""`python -m bot health` answers for one process: its own heartbeat file, named after the
process by default, so processes sharing a data folder never read each other's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from bot.core.poller import write_heartbeat

ROOT = Path(__file__).resolve().parents[2]
SHARED = {
    "DISCORD_TOKEN": "discord-token-for-health",
    "NOVITA_SIMULATE": "1",
    "DATABASE_URL": "postgresql://bot@db.internal/vidu",  # never reached by `health`
    "SHARD_COUNT": "2",
}


def run_bot(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "NOVITA_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,  # no .env there
        env={**clean, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def beat(path: Path, seconds_ago: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{time.time() - seconds_ago:.0f}\n")


def test_each_process_reads_its_own_heartbeat_in_a_shared_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**SHARED, "DATABASE_PATH": str(data / "bot.sqlite3")}
    beat(data / "health-shard-0", seconds_ago=5)  # shard 0's poller is alive
    beat(data / "health-shard-1", seconds_ago=600)  # shard 1's stopped ten minutes ago

    alive = run_bot({**env, "SHARD_IDS": "0"}, tmp_path, "health")
    assert alive.returncode == 0, alive.stderr
    assert alive.stdout.startswith("healthy: shard-0: last heartbeat")

    stale = run_bot({**env, "SHARD_IDS": "1"}, tmp_path, "health")
    assert stale.returncode == 1
    assert re.match(r"unhealthy: shard-1: last heartbeat 60\d s ago", stale.stderr), stale.stderr

    # A third process, named by hand, has never beaten at all.
    unnamed = run_bot({**env, "PROCESS_NAME": "spare"}, tmp_path, "health")
    assert unnamed.returncode == 1
    assert f"no heartbeat in {data / 'health-spare'}" in unnamed.stderr


def test_health_file_still_overrides(tmp_path: Path) -> None:
    chosen = tmp_path / "elsewhere" / "hb"
    beat(chosen, seconds_ago=1)
    env = {**SHARED, "SHARD_IDS": "1", "HEALTH_FILE": str(chosen)}
    assert run_bot(env, tmp_path, "health").returncode == 0
    assert (
        run_bot({**env, "HEALTH_FILE": str(tmp_path / "none")}, tmp_path, "health").returncode == 1
    )


def test_health_never_reads_a_half_written_heartbeat(tmp_path: Path) -> None:
    # The poller beats while `health` (another process, any moment) reads: every read finds
    # a whole heartbeat, never an empty or cut file.
    path = tmp_path / "health-shard-0"
    write_heartbeat(path, time.time())
    done = threading.Event()
    seen: list[str] = []

    def read_all_the_time() -> None:
        while not done.is_set():
            seen.append(path.read_text())

    reader = threading.Thread(target=read_all_the_time)
    reader.start()
    try:
        for n in range(1500):
            write_heartbeat(path, 1_700_000_000 + n)
    finally:
        done.set()
        reader.join()
    assert len(seen) > 100  # the two really overlapped
    assert all(re.fullmatch(r"\d+\n", text) for text in seen), {
        text for text in seen if not re.fullmatch(r"\d+\n", text)
    }
    assert [p.name for p in tmp_path.iterdir()] == ["health-shard-0"]  # no draft left
