"""A job's card and history line read its request through the request model."""

from __future__ import annotations

from typing import Any

from bot.discord.cards import describe_parameters, history_line, job_card, prompt_of
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
