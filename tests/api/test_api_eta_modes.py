"""The client reads every `eta_mode` the simulator can play: missing fields are None."""

from __future__ import annotations

import pytest

from bot.api import TaskStatus, VideoAPI
from bot.api.endpoints import Q3_PRO_I2V as Q3
from bot.simulator import EtaMode, Simulator
from tests.api.api_samples import q3_request


@pytest.mark.parametrize(
    ("mode", "eta", "progress"),
    [
        ("accurate", 10, 0),
        ("too_long", 40, 0),
        ("too_short", 3, 0),
        ("stale", 10, 0),
        ("progress_only", None, 0),
        ("none", None, None),
    ],
)
async def test_first_read_of_each_eta_mode(
    sim: Simulator, api: VideoAPI, mode: EtaMode, eta: int | None, progress: int | None
) -> None:
    sim.config.eta_mode = mode
    sim.next_task_seconds = [10.0]
    result = await api.task_result(await api.submit(Q3, q3_request()))
    assert result.status is TaskStatus.QUEUED
    assert (result.task.eta, result.task.progress_percent) == (eta, progress)
