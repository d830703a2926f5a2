"""The Task Result body of a simulated task, as `GET /v3/async/task-result` answers it.

Built from the task's timeline at the moment of asking (its `reading`, which follows the
eta mode), so a read and a webhook sent at the same moment carry the same body.
"""

from __future__ import annotations

import time
from typing import Any

from bot.api.models import TaskStatus
from bot.simulator.media import video_output
from bot.simulator.tasks import SimTask, SimulatorState


def task_result_body(
    state: SimulatorState, task: SimTask, origin: str, now: float | None = None
) -> dict[str, Any]:
    """The documented Task Result JSON for `task` at `now` (monotonic; default: now)."""
    config = state.config
    now = time.monotonic() if now is None else now
    reading = task.reading(now, config)
    info: dict[str, Any] = {
        "task_id": task.task_id,
        "task_type": task.model.upper().replace("-", "_"),
        "status": reading.status.value,
        "reason": "",
    }
    videos: list[dict[str, Any]] = []
    if reading.status.is_terminal and task.done_at_wall is None:
        # When the task really ended, not when someone first asked (the API's
        # debug_info.complete_time_ms says so, and the bot learns durations from it).
        task.done_at_wall = task.created_wall + max(task.seconds, 0.0)
    if reading.status is TaskStatus.FAILED:
        info["reason"] = task.fail_reason or ""
    elif reading.status is TaskStatus.SUCCEED:
        videos.append(video_output(state, task, origin))
    if reading.eta is not None:
        info["eta"] = reading.eta
    if reading.progress_percent is not None:
        info["progress_percent"] = reading.progress_percent
    body: dict[str, Any] = {
        "task": info,
        "extra": {
            "seed": str(task.seed),
            "debug_info": {
                "submit_time_ms": str(int(task.created_wall * 1000)),
                "execute_time_ms": "0",
                "complete_time_ms": str(int((task.done_at_wall or 0) * 1000)),
            },
        },
        "videos": videos,
        "images": [],
        "audios": [],
    }
    if config.unknown_fields:
        info["queue_position"] = 0
        body["simulator"] = {"note": "fields the documentation does not show are ignored"}
    return body
