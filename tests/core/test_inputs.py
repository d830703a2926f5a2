"""The checks made on attachments and text before anything is spent."""

from __future__ import annotations

import pytest

from bot.core.inputs import (
    AttachedFile,
    check_audio,
    check_image,
    check_subject_references,
    parse_voices,
)
from bot.core.refusals import Refusal
from bot.discord.wording import refusal_text as text_of

MB = 1024 * 1024


def image(**changes: object) -> AttachedFile:
    values: dict[str, object] = {
        "option": "image",
        "filename": "cat.png",
        "url": "https://cdn.test/cat.png",
        "content_type": "image/png",
        "size": 2 * MB,
        "width": 1024,
        "height": 768,
    }
    values.update(changes)
    return AttachedFile(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "content_type", ["image/png", "image/jpeg", "image/webp", "image/png; charset=x"]
)
def test_good_images_pass(content_type: str) -> None:
    check_image(image(content_type=content_type))


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"content_type": "application/pdf", "filename": "cat.png"}, "is application/pdf"),
        ({"content_type": None}, "an unknown type"),
        ({"content_type": "image/gif"}, "JPEG, PNG or WebP"),
        ({"size": 51 * MB}, "at most 50 MB"),
        ({"width": 127, "height": 500}, "at least 128×128"),
        ({"width": 2000, "height": 499}, "between 1:4 and 4:1"),
        ({"width": 499, "height": 2000}, "between 1:4 and 4:1"),
        ({"width": None, "height": None}, "could not read the size"),
    ],
)
def test_bad_images_are_refused_with_what_to_change(changes: dict[str, object], words: str) -> None:
    with pytest.raises(Refusal) as refusal:
        check_image(image(**changes))
    assert words in text_of(refusal.value)
    assert refusal.value.code == "bad_image"


def test_exactly_four_to_one_is_allowed() -> None:
    check_image(image(width=2048, height=512))
    check_image(image(width=128, height=128))


@pytest.mark.parametrize("content_type", ["audio/mpeg", "audio/wav", "audio/x-m4a", "audio/flac"])
def test_good_audio_passes(content_type: str) -> None:
    check_audio(image(option="music", filename="a", content_type=content_type, size=MB))


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"content_type": "image/png"}, "MP3, WAV, M4A or FLAC"),
        ({"content_type": "audio/ogg"}, "audio/ogg"),
        ({"content_type": "audio/mpeg", "size": 21 * MB}, "at most 20 MB"),
    ],
)
def test_bad_audio_is_refused(changes: dict[str, object], words: str) -> None:
    with pytest.raises(Refusal) as refusal:
        check_audio(image(option="music", **changes))
    assert words in text_of(refusal.value)


def test_prompt_may_only_name_attached_subjects() -> None:
    check_subject_references("@1 hugs @2", {1, 2})
    check_subject_references("no references at all", {1})
    with pytest.raises(Refusal) as refusal:
        check_subject_references("@1 hugs @3 and @5", {1, 2})
    assert "@3, @5" in text_of(refusal.value)
    assert "`subject3`" in text_of(refusal.value)


def test_voices_are_parsed() -> None:
    assert parse_voices("1=voice_a 2=voice-b", {1, 2}) == {1: "voice_a", 2: "voice-b"}
    assert parse_voices("1: alto, 3=bass.v2", {1, 3}) == {1: "alto", 3: "bass.v2"}
    assert parse_voices("   ", {1}) == {}
    assert parse_voices(None, {1}) == {}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("voice_a", "Write pairs like"),
        ("1=", "Write pairs like"),
        ("1=good 1=again", "twice"),
        ("4=voice", "`subject4` is not attached"),
        ("1=semi;colon", "Write pairs like"),
    ],
)
def test_bad_voices_are_refused(text: str, words: str) -> None:
    with pytest.raises(Refusal) as refusal:
        parse_voices(text, {1, 2})
    assert words in text_of(refusal.value)


def test_discord_mentions_are_not_subject_references() -> None:
    check_subject_references("<@123456> and <@!42> watch @1", {1})
    with pytest.raises(Refusal):
        check_subject_references("mail me at a@2 or see @2", {1})
