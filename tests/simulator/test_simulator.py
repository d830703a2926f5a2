"""The simulator speaks the documented shapes (checked with a plain HTTP client)."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import sys
import time
from typing import Any

import aiohttp
import pytest

from bot.simulator import Simulator, SimulatorConfig, sample_mp4, video_of_size
from tests.api.api_samples import IMAGE
from tests.simulator.simkit import Q3_PATH, RESULT, auth, call


def is_error_body(body: Any, code: int, reason: str) -> bool:
    return (
        set(body) == {"code", "reason", "message", "metadata"}
        and body["code"] == code
        and body["reason"] == reason
    )


async def test_auth_is_checked(sim: Simulator) -> None:
    status, body, _ = await call(sim, "GET", RESULT, params={"task_id": "x"})
    assert status == 400 and is_error_body(body, 400, "MISSING_API_KEY")
    for header in ("Bearer wrong", f"Basic {sim.api_key}", sim.api_key):
        status, body, _ = await call(
            sim, "POST", Q3_PATH, headers={"Authorization": header}, json={"images": [IMAGE]}
        )
        assert status == 403 and is_error_body(body, 403, "INVALID_API_KEY")
    assert not sim.tasks
    assert len(sim.requests) == 4  # every request is recorded, refused or not


async def test_bodies_are_validated(sim: Simulator) -> None:
    status, body, _ = await call(sim, "POST", Q3_PATH, headers=auth(sim), data=b"{oops")
    assert status == 400 and is_error_body(body, 400, "INVALID_REQUEST_BODY")
    status, body, _ = await call(
        sim, "POST", Q3_PATH, headers=auth(sim), json={"images": [IMAGE], "duration": 30}
    )
    assert status == 400 and is_error_body(body, 400, "INVALID_REQUEST_BODY")
    assert body["message"].startswith("duration must be a whole number of seconds from 1 to 16")
    status, body, _ = await call(sim, "POST", "/v3/async/vidu-nope", headers=auth(sim), json={})
    assert status == 404 and is_error_body(body, 404, "API_NOT_FOUND")
    status, body, _ = await call(sim, "GET", RESULT, headers=auth(sim))
    assert status == 400 and body["reason"] == "INVALID_REQUEST_BODY"
    assert not sim.tasks


async def test_task_moves_through_its_states(sim: Simulator) -> None:
    sim.config.task_seconds = 0.6
    sim.config.queued_fraction = 0.3
    status, body, _ = await call(sim, "POST", Q3_PATH, headers=auth(sim), json={"images": [IMAGE]})
    assert status == 200 and set(body) == {"task_id"}
    task_id = body["task_id"]
    recorded = sim.requests[-1]
    assert (recorded.method, recorded.path, recorded.json) == ("POST", Q3_PATH, {"images": [IMAGE]})

    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["task"]["status"] not in (
        "TASK_STATUS_SUCCEED",
        "TASK_STATUS_FAILED",
    ):
        _, result, _ = await call(
            sim, "GET", RESULT, headers=auth(sim), params={"task_id": task_id}
        )
        seen.append(result)
        await asyncio.sleep(0.03)
    assert sim.requests[-1].query == {"task_id": task_id}
    statuses = [r["task"]["status"] for r in seen]
    assert statuses[0] == "TASK_STATUS_QUEUED"
    assert "TASK_STATUS_PROCESSING" in statuses
    assert statuses[-1] == "TASK_STATUS_SUCCEED"
    first, last = seen[0], seen[-1]
    assert set(last) >= {"task", "extra", "videos", "images", "audios"}
    assert first["task"]["progress_percent"] == 0 and first["task"]["eta"] >= 1
    assert last["task"]["progress_percent"] == 100 and last["task"]["eta"] == 0
    assert first["videos"] == []
    (video,) = last["videos"]
    assert video["video_url_ttl"] == "3600" and video["video_type"] == "mp4"
    assert video["video_url"].startswith(sim.base_url + "/sim-media/")
    assert "expires=" in video["video_url"] and "signature=" in video["video_url"]


async def test_video_link_expires_and_a_new_read_signs_a_fresh_one(sim: Simulator) -> None:
    sim.config.task_seconds = 0
    sim.config.video_ttl = "1"
    _, body, _ = await call(sim, "POST", Q3_PATH, headers=auth(sim), json={"images": [IMAGE]})
    task_id = body["task_id"]
    _, result, _ = await call(sim, "GET", RESULT, headers=auth(sim), params={"task_id": task_id})
    link = result["videos"][0]["video_url"]
    async with aiohttp.ClientSession() as session:
        async with session.get(link) as response:
            assert response.status == 200 and response.content_type == "video/mp4"
            assert await response.read() == sample_mp4()
        await asyncio.sleep(2.1)
        async with session.get(link) as response:
            assert response.status == 403  # what a storage bucket says of an expired link
        _, again, _ = await call(sim, "GET", RESULT, headers=auth(sim), params={"task_id": task_id})
        fresh = again["videos"][0]["video_url"]
        assert fresh != link
        async with session.get(fresh) as response:
            assert response.status == 200


async def test_server_side_rate_limit(sim: Simulator) -> None:
    sim.config.rate_limit_per_minute = 2
    for _ in range(2):
        status, _, _ = await call(sim, "GET", RESULT, headers=auth(sim), params={"task_id": "x"})
        assert status == 404
    status, body, headers = await call(
        sim, "GET", RESULT, headers=auth(sim), params={"task_id": "x"}
    )
    assert status == 429 and is_error_body(body, 429, "RATE_LIMIT_EXCEEDED")
    assert headers["Retry-After"] == "5"


async def test_each_request_records_the_status_it_was_answered(sim: Simulator) -> None:
    sim.fail_next("submit", status=429, reason="RATE_LIMIT_EXCEEDED")
    sim.disconnect_next("submit")
    for _ in range(2):
        with contextlib.suppress(aiohttp.ClientError):
            await call(sim, "POST", Q3_PATH, headers=auth(sim), json={"images": [IMAGE]})
    status, _, _ = await call(sim, "POST", Q3_PATH, headers=auth(sim), json={"images": [IMAGE]})
    assert status == 200
    # Refused (nothing made), dropped (no answer: the client cannot know), accepted.
    assert [r.status for r in sim.submissions] == [429, None, 200]


async def test_close_ends_a_hung_answer_quickly() -> None:
    simulator = Simulator(SimulatorConfig())
    await simulator.start()
    simulator.hang_next_submission(seconds=60)

    async def post() -> None:
        async with aiohttp.ClientSession() as session:
            await session.post(
                simulator.base_url + Q3_PATH, headers=auth(simulator), json={"images": [IMAGE]}
            )

    pending = asyncio.create_task(post())
    for _ in range(300):
        if simulator.tasks:
            break
        await asyncio.sleep(0.01)
    start = time.monotonic()
    await simulator.close()
    assert time.monotonic() - start < 1.5
    with pytest.raises(aiohttp.ClientError):
        await pending


def top_level_boxes(data: bytes) -> list[tuple[bytes, int]]:
    boxes, offset = [], 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        boxes.append((kind, size))
        offset += size
    assert offset == len(data)
    return boxes


def test_the_sample_is_an_mp4_and_padding_keeps_it_one() -> None:
    kinds = [kind for kind, _ in top_level_boxes(sample_mp4())]
    assert kinds[0] == b"ftyp" and b"moov" in kinds and b"mdat" in kinds
    padded = video_of_size(50_000)
    assert len(padded) == 50_000
    assert top_level_boxes(padded)[-1] == (b"free", 50_000 - len(sample_mp4()))
    assert video_of_size(10) == sample_mp4()


async def test_standalone_entry_prints_url_and_key() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.simulator",
        "--task-seconds",
        "0",
        "--api-key",
        "sk-demo",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        url_line = await asyncio.wait_for(process.stdout.readline(), 15)
        key_line = await asyncio.wait_for(process.stdout.readline(), 5)
        base_url = url_line.decode().strip().removeprefix("NOVITA_BASE_URL=")
        assert base_url.startswith("http://127.0.0.1:")
        assert key_line.decode().strip() == "NOVITA_API_KEY=sk-demo"
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                base_url + Q3_PATH,
                headers={"Authorization": "Bearer sk-demo"},
                json={"images": [IMAGE]},
            ) as response,
        ):
            assert response.status == 200
            assert "task_id" in await response.json()
    finally:
        process.terminate()
        await process.wait()
