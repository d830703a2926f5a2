"""Request models refuse every documented bound by name; response models take what comes."""

from __future__ import annotations

from typing import Any

import pytest
from api_samples import IMAGE, IMAGE2
from pydantic import ValidationError

from bot.api import (
    Q2ReferenceToVideoRequest,
    Q3ImageToVideoRequest,
    Q3TurboImageToVideoRequest,
    RequestValidationError,
    TaskResult,
    TaskStatus,
    VideoRequest,
    describe_validation_error,
)

Q3_BASE: dict[str, Any] = {"images": [IMAGE], "prompt": "a cat"}


def q2_base(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prompt": "@1 meets @2",
        "subjects": [{"id": "1", "images": [IMAGE]}, {"id": "2", "images": [IMAGE2]}],
    }
    body.update(changes)
    return body


def subjects(count: int, images_each: int = 1) -> list[dict[str, Any]]:
    return [{"id": str(n), "images": [IMAGE] * images_each} for n in range(1, count + 1)]


# (changes to a valid Q3 body, field named in the message, words that must appear)
Q3_BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"images": []}, "images", "exactly one image URL"),
    ({"images": [IMAGE, IMAGE2]}, "images", "exactly one image URL"),
    ({"images": ["cat.png"]}, "images[1]", "http:// or https:// URL"),
    ({"images": None}, "images", "exactly one image URL"),
    ({"prompt": "x" * 1501}, "prompt", "at most 1500 characters"),
    ({"duration": 0}, "duration", "from 1 to 16"),
    ({"duration": 17}, "duration", "from 1 to 16"),
    ({"duration": "5"}, "duration", "from 1 to 16"),
    ({"duration": 2.5}, "duration", "from 1 to 16"),
    ({"resolution": "4k"}, "resolution", "540p, 720p, 1080p"),
    ({"aspect_ratio": "21:9"}, "aspect_ratio", "16:9, 9:16, 4:3, 3:4, 1:1"),
    ({"style": "cartoon"}, "style", "general, anime"),
    ({"seed": -1}, "seed", "from 0 to 2147483647"),
    ({"seed": 2_147_483_648}, "seed", "from 0 to 2147483647"),
    ({"off_peak": "yes"}, "off_peak", "true or false"),
    ({"is_rec": 1}, "is_rec", "true or false"),
    ({"watermark": "no"}, "watermark", "true or false"),
    ({"audio": "ftp://example.test/a.mp3"}, "audio", "http:// or https:// URL"),
    ({"wm_url": "logo.png"}, "wm_url", "http:// or https:// URL"),
    ({"wm_position": "center"}, "wm_position", "top-left, top-right, bottom-left, bottom-right"),
    ({"audio_type": "all"}, "audio_type", "not an option"),
    ({"colour": "red"}, "colour", "not an option"),
]


@pytest.mark.parametrize(
    ("changes", "field", "allowed"), Q3_BAD, ids=[c[1] + str(i) for i, c in enumerate(Q3_BAD)]
)
def test_q3_rejects_each_bound_naming_the_field(
    changes: dict[str, Any], field: str, allowed: str
) -> None:
    body = {**Q3_BASE, **changes}
    body = {k: v for k, v in body.items() if v is not None}
    with pytest.raises(ValidationError) as caught:
        Q3ImageToVideoRequest.model_validate(body)
    message = describe_validation_error(caught.value)
    assert message.startswith(field), message
    assert allowed in message, message

    with pytest.raises(RequestValidationError) as typed:
        Q3ImageToVideoRequest.from_body(body)
    assert typed.value.field == field
    assert typed.value.message == message
    assert isinstance(typed.value, ValueError)


def test_q3_turbo_adds_audio_type_and_keeps_q3_bounds() -> None:
    ok = Q3TurboImageToVideoRequest(images=[IMAGE], audio_type="speech_only")
    assert ok.to_body()["audio_type"] == "speech_only"
    assert issubclass(Q3TurboImageToVideoRequest, Q3ImageToVideoRequest)
    with pytest.raises(RequestValidationError, match=r"audio_type must be one of all, speech_only"):
        Q3TurboImageToVideoRequest.from_body({**Q3_BASE, "audio_type": "music"})
    with pytest.raises(RequestValidationError, match=r"duration must be .* from 1 to 16"):
        Q3TurboImageToVideoRequest.from_body({**Q3_BASE, "duration": 20})


Q2_BAD: list[tuple[dict[str, Any], str, str]] = [
    (q2_base(subjects=[]), "subjects", "1 to 7 subjects"),
    (q2_base(prompt="@1", subjects=subjects(8)), "subjects", "1 to 7 subjects"),
    (
        q2_base(prompt="@1", subjects=[{"id": "1", "images": []}]),
        "subjects[1].images",
        "1 to 3 image URLs",
    ),
    (
        q2_base(prompt="@1", subjects=subjects(1, images_each=4)),
        "subjects[1].images",
        "1 to 3 image URLs",
    ),
    (
        q2_base(prompt="@1", subjects=subjects(4, images_each=2)),
        "subjects",
        "at most 7 images in all",
    ),
    (
        q2_base(subjects=[{"id": "1", "images": [IMAGE]}, {"id": "1", "images": [IMAGE2]}]),
        "subjects",
        "id 1 is used twice",
    ),
    (q2_base(subjects=[{"id": "a b", "images": [IMAGE]}]), "subjects[1].id", "letters, digits"),
    (q2_base(subjects=[{"id": "1", "images": ["nope"]}]), "subjects[1].images[1]", "http://"),
    (
        q2_base(subjects=[{"id": "1", "images": [IMAGE], "age": 3}]),
        "subjects[1].age",
        "not an option",
    ),
    (q2_base(prompt=""), "prompt", "1 to 1500 characters"),
    (q2_base(prompt="   "), "prompt", "must not be empty"),
    (q2_base(prompt="@1 " + "x" * 1500), "prompt", "1 to 1500 characters"),
    (
        q2_base(prompt="@1 and @3 and @12"),
        "prompt",
        "mentions @3, @12, but the subjects are only @1, @2",
    ),
    (q2_base(duration=0), "duration", "from 1 to 10"),
    (q2_base(duration=11), "duration", "from 1 to 10"),
    (q2_base(resolution="480p"), "resolution", "540p, 720p, 1080p"),
    (q2_base(aspect_ratio="4:5"), "aspect_ratio", "16:9, 9:16, 1:1, 4:3, 3:4"),
    (q2_base(movement_amplitude="huge"), "movement_amplitude", "auto, small, medium, high"),
    (q2_base(bgm="yes"), "bgm", "true or false"),
    (q2_base(audio="https://x.test/a.mp3"), "audio", "true or false"),
    (q2_base(watermark=None), "watermark", "true or false"),
    (q2_base(seed=2_147_483_648), "seed", "from 0 to 2147483647"),
    (q2_base(off_peak=True), "off_peak", "not an option"),
    ({"subjects": subjects(1)}, "prompt", "is required"),
]


@pytest.mark.parametrize(
    ("body", "field", "allowed"), Q2_BAD, ids=[c[1] + str(i) for i, c in enumerate(Q2_BAD)]
)
def test_q2_rejects_each_bound_naming_the_field(
    body: dict[str, Any], field: str, allowed: str
) -> None:
    with pytest.raises(RequestValidationError) as caught:
        Q2ReferenceToVideoRequest.from_body(body)
    assert caught.value.field == field
    assert caught.value.message.startswith(field), caught.value.message
    assert allowed in caught.value.message, caught.value.message


def test_q2_limits_that_are_allowed() -> None:
    seven = Q2ReferenceToVideoRequest.from_body(
        q2_base(prompt="@1 @7", subjects=subjects(7), duration=10, seed=0)
    )
    assert len(seven.subjects) == 7
    per_subject = Q2ReferenceToVideoRequest.from_body(
        q2_base(prompt="@1 and @2", subjects=[*subjects(1, 3), {"id": "2", "images": [IMAGE] * 3}])
    )
    assert sum(len(s.images) for s in per_subject.subjects) == 6
    # An address or a lone @ is not a subject mention.
    Q2ReferenceToVideoRequest.from_body(q2_base(prompt="@1 writes to a@2b.example @ noon"))


def test_message_shows_the_given_value_for_short_inputs() -> None:
    with pytest.raises(RequestValidationError) as caught:
        Q3ImageToVideoRequest.from_body({**Q3_BASE, "duration": 20})
    assert (
        caught.value.message
        == "duration must be a whole number of seconds from 1 to 16 (you gave 20)"
    )


def test_several_problems_are_all_named() -> None:
    with pytest.raises(RequestValidationError) as caught:
        Q3ImageToVideoRequest.from_body({"images": [IMAGE], "duration": 99, "resolution": "8k"})
    assert "duration must be" in caught.value.message
    assert "resolution must be" in caught.value.message


def test_non_object_body() -> None:
    with pytest.raises(RequestValidationError, match="must be a JSON object"):
        Q3ImageToVideoRequest.from_body([1, 2])  # type: ignore[arg-type]


def test_to_body_leaves_out_none_and_keeps_defaults() -> None:
    body = Q3ImageToVideoRequest(images=[IMAGE]).to_body()
    assert body == {
        "images": [IMAGE],
        "prompt": "",
        "duration": 5,
        "resolution": "720p",
        "aspect_ratio": "16:9",
        "style": "general",
        "off_peak": False,
        "is_rec": False,
        "watermark": False,
    }
    q2 = Q2ReferenceToVideoRequest.from_body(q2_base())
    assert q2.to_body()["subjects"] == [
        {"id": "1", "images": [IMAGE]},
        {"id": "2", "images": [IMAGE2]},
    ]
    assert "aspect_ratio" not in q2.to_body()
    # The body round-trips through the model (what a stored job does).
    assert Q2ReferenceToVideoRequest.from_body(q2.to_body()) == q2


def test_every_request_model_is_registered_for_messages() -> None:
    assert {
        "Q3ImageToVideoRequest",
        "Q3TurboImageToVideoRequest",
        "Q2ReferenceToVideoRequest",
    } <= set(VideoRequest._registry)


# --- responses ---------------------------------------------------------------------------


def result(task: dict[str, Any], **rest: Any) -> TaskResult:
    return TaskResult.model_validate({"task": task, **rest})


@pytest.mark.parametrize(
    ("ttl", "expected"),
    [("3600", 3600), (3600, 3600), ("0", 0), (0, 0), (None, 0), ("soon", 0), (3600.0, 3600)],
)
def test_video_ttl_accepts_strings_and_ints(ttl: Any, expected: int) -> None:
    parsed = result(
        {"task_id": "t", "status": "TASK_STATUS_SUCCEED"},
        videos=[{"video_url": "https://v.test/a.mp4", "video_url_ttl": ttl, "video_type": "mp4"}],
    )
    assert parsed.video is not None
    assert parsed.video.video_url_ttl == expected
    assert parsed.succeeded and parsed.is_terminal and not parsed.failed


def test_unknown_fields_are_ignored_and_optional_fields_may_be_missing() -> None:
    parsed = TaskResult.model_validate(
        {
            "task": {"task_id": "t", "status": "TASK_STATUS_PROCESSING", "brand_new": {"x": 1}},
            "videos": None,
            "extra": None,
            "images": [],
            "audios": [],
            "surprise": True,
        }
    )
    assert parsed.task.eta is None and parsed.task.progress_percent is None
    assert parsed.video is None and parsed.extra == {}
    assert not parsed.is_terminal


def test_numbers_are_lenient() -> None:
    parsed = result({"status": "TASK_STATUS_PROCESSING", "eta": "42", "progress_percent": 37.6})
    assert (parsed.task.eta, parsed.task.progress_percent) == (42, 37)
    clamped = result({"status": "TASK_STATUS_PROCESSING", "eta": -3, "progress_percent": 180})
    assert (clamped.task.eta, clamped.task.progress_percent) == (0, 100)
    junk = result({"status": "TASK_STATUS_QUEUED", "eta": "soon", "progress_percent": True})
    assert (junk.task.eta, junk.task.progress_percent) == (None, None)


def test_unknown_status_counts_as_processing() -> None:
    parsed = result({"task_id": "t", "status": "TASK_STATUS_PAUSED", "reason": None})
    assert parsed.status is TaskStatus.PROCESSING
    assert parsed.task.reason == ""
    assert not parsed.is_terminal


def test_failed_result_carries_the_reason() -> None:
    parsed = result({"task_id": "t", "status": "TASK_STATUS_FAILED", "reason": "moderation"})
    assert parsed.failed and parsed.is_terminal and parsed.task.reason == "moderation"
