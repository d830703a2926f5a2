"""Temporary downloads live in a folder per process; a dead process's folder is removed at
the next start, a live one's never."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from bot.scratch import ScratchDir

REPO = Path(__file__).resolve().parents[2]

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from bot.scratch import ScratchDir

    with ScratchDir(Path(sys.argv[1])) as scratch:
        (scratch.path / "vidu-half.mp4").write_bytes(b"x" * 1000)
        print(scratch.path, flush=True)
        time.sleep(60)
    """
)


def start_holder(base: Path) -> tuple[subprocess.Popen[str], Path]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(base)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert process.stdout is not None
    return process, Path(process.stdout.readline().strip())


def test_a_killed_process_leaves_nothing_after_the_next_start(tmp_path: Path) -> None:
    base = tmp_path / "downloads"
    dead, dead_dir = start_holder(base)
    alive, alive_dir = start_holder(base)
    try:
        dead.kill()  # SIGKILL: no clean-up of its own
        dead.wait(timeout=10)
        assert (dead_dir / "vidu-half.mp4").exists()
        (base / "vidu-loose.mp4").write_bytes(b"y")  # left by an older version
        with ScratchDir(base) as scratch:
            assert (
                not dead_dir.exists() and not dead_dir.with_name(dead_dir.name + ".lock").exists()
            )
            assert not (base / "vidu-loose.mp4").exists()
            assert (alive_dir / "vidu-half.mp4").exists()  # its process still writes there
            assert scratch.path.is_dir()
            mine = scratch.path
        assert not mine.exists()  # a clean exit removes its own folder
    finally:
        alive.kill()
        alive.wait(timeout=10)
