"""The Task Result body of a simulated task, as `GET /v3/async/task-result` answers it.

Built from the task's timeline at the moment of asking, so a read and a webhook sent at
the same moment carry the same body.
"""

from __future__ import annotations

import math
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
    fraction = task.progress(now)
    info: dict[str, Any] = {
        "task_id": task.task_id,
        "task_type": task.model.upper().replace("-", "_"),
        "reason": "",
    }
    videos: list[dict[str, Any]] = []
    if fraction >= 1.0:
        if task.done_at_wall is None:
            task.done_at_wall = time.time()
        if task.fail_reason is not None:
            info["status"] = TaskStatus.FAILED.value
            info["reason"] = task.fail_reason
        else:
            info["status"] = TaskStatus.SUCCEED.value
            videos.append(video_output(state, task, origin))
        progress, eta = 100, 0
    else:
        queued = fraction < config.queued_fraction
        info["status"] = (TaskStatus.QUEUED if queued else TaskStatus.PROCESSING).value
        progress = 0 if queued else int(fraction * 100)
        eta = math.ceil(task.seconds - (now - task.created))
    if config.progress_fields:
        info["eta"] = eta
        info["progress_percent"] = progress
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
