"""A job's card and history line read its request through the request model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.discord.cards import (
    EXTRAPOLATED_CAP,
    describe_parameters,
    history_line,
    job_card,
    prompt_of,
    shown_progress,
)
from storage import Job, JobState
from tests.shared import T0

IMAGE = "https://cdn.example/a.png"


def job(model: str, params: dict[str, Any], state: JobState = JobState.PROCESSING) -> Job:
    return Job(
        id=12,
        guild_id=1,
        channel_id=2,
        user_id=3,
        model=model,
        params=params,
        price=30,
        state=state,
        progress=40,
        created_at=T0,
        updated_at=T0,
    )


def test_q3_parameters_and_defaults_come_from_the_request_model() -> None:
    q3 = job("vidu-q3-pro-i2v", {"images": [IMAGE], "seed": 7, "off_peak": True})
    # Left out of the stored body: duration, resolution, aspect ratio and style take the
    # model's defaults, not defaults written again here.
    assert describe_parameters(q3) == "5 s · 720p · 16:9 · style general · seed 7 · off-peak"
    turbo = job("vidu-q3-turbo-i2v", {"images": [IMAGE], "audio_type": "speech_only"})
    assert "audio speech_only" in describe_parameters(turbo)


def test_q2_parameters() -> None:
    subjects = [{"id": "1", "images": [IMAGE]}, {"id": "2", "images": [IMAGE]}]
    q2 = job(
        "vidu-q2-reference2video",
        {"prompt": "@1 meets @2", "subjects": subjects, "bgm": True, "duration": 4},
    )
    assert describe_parameters(q2) == "4 s · 720p · music · 2 subject(s)"
    assert prompt_of(q2) == "@1 meets @2"


def test_an_unreadable_stored_body_still_draws_a_card() -> None:
    odd = job("vidu-q3-pro-i2v", {"images": "not a list"})
    assert describe_parameters(odd) == "vidu-q3-pro-i2v" and prompt_of(odd) == ""
    embed = job_card(odd)
    assert embed.title == "Video job #12 · Rendering" and embed.description == "*(no prompt)*"


def test_history_line_of_a_failed_job_says_why() -> None:
    failed = job("vidu-q3-pro-i2v", {"images": [IMAGE]}, JobState.FAILED)
    failed = failed.model_copy(update={"failure_reason": "Refused by moderation."})
    assert "Refused by moderation." in history_line(failed)


def test_between_reads_the_bar_moves_with_the_expected_end() -> None:
    rendering = job("vidu-q3-pro-i2v", {"images": [IMAGE]}).model_copy(
        update={"progress": 10, "expected_at": T0 + timedelta(seconds=100)}
    )
    assert shown_progress(rendering, T0 + timedelta(seconds=50)) == 50
    assert shown_progress(rendering, T0 + timedelta(seconds=5)) == 10  # never below the service
    assert shown_progress(rendering, T0 + timedelta(seconds=400)) == EXTRAPOLATED_CAP
    queued = rendering.model_copy(update={"state": JobState.QUEUED, "progress": 0})
    assert shown_progress(queued, T0 + timedelta(seconds=50)) == 50  # the expected time's share
    done = rendering.model_copy(update={"state": JobState.SUCCEEDED, "progress": 100})
    assert shown_progress(done, T0 + timedelta(seconds=50)) == 100
    unknown = rendering.model_copy(update={"expected_at": None})
    assert shown_progress(unknown, T0 + timedelta(seconds=50)) == 10


def test_a_card_says_when_the_video_is_likely_ready() -> None:
    soon = datetime.now(UTC) + timedelta(minutes=3)
    rendering = job("vidu-q3-pro-i2v", {"images": [IMAGE]}).model_copy(
        update={"progress": 10, "expected_at": soon, "created_at": soon - timedelta(minutes=4)}
    )
    [progress] = [f for f in job_card(rendering).fields if f.name == "Progress"]
    assert progress.value is not None
    assert f"likely ready <t:{int(soon.timestamp())}:R>" in progress.value
    assert "25%" in progress.value  # one minute of four
