"""Every refusal of the core has words on Discord, and those words carry its facts."""

from __future__ import annotations

import pytest

from bot.core import refusals as r
from bot.discord.wording import UNWORDED, mentions, refusal_text
from tests.shared import T0

# One example of every kind of refusal, with the words it must contain.
SAMPLES: list[tuple[r.Refusal, list[str]]] = [
    (r.UnknownModel("vidu-q9", ("vidu-a", "vidu-b")), ["`vidu-q9`", "vidu-a, vidu-b"]),
    (r.ModelDisabled("vidu-a", ("vidu-b",)), ["`vidu-a` is turned off", "vidu-b"]),
    (r.ModelDisabled("vidu-a", ()), ["Ask a moderator"]),
    (r.ChannelNotAllowed((5, 6)), ["<#5>, <#6>"]),
    (r.Blocked(), ["blocked"]),
    (r.TooManyJobs(2, 2), ["2 videos in progress", "limit here is 2"]),
    (r.NotEnoughCredits(30, 1, T0), ["costs 30 credits", "1 credit left", "2025-03-05 12:00"]),
    (r.NotEnoughCredits(30, 0, None), ["0 credits left"]),
    (r.GuildCapReached(100, 10, 30, T0), ["daily limit of 100 credits", "10 credits left"]),
    (r.OperatorCapReached(30, T0), ["all servers", "30 credits"]),
    (r.InvalidRequest("duration must be 1 to 16."), ["duration must be 1 to 16."]),
    (r.JobNotFound(7), ["no job #7 of yours"]),
    (r.JobNotFound(7, of_member=False), ["no job #7 on this server"]),
    (r.RerollBusy(7), ["re-roll of job #7 is already on its way"]),
    (r.InputsGone(7), ["job #7 are no longer stored"]),
    (r.OutOfRange("credits", None, None), ["other than 0"]),
    (r.OutOfRange("credits", 0, None), ["`credits` must be 0 or more"]),
    (r.OutOfRange("jobs", 1, 50), ["between 1 and 50"]),
    (r.NotOneOf("period", ("day", "week")), ["day, week"]),
    (r.NoBonusToTake(), ["no unused bonus"]),
    (r.NoModelLeft(), ["at least one model"]),
    (r.SettingsChanged(), ["Another moderator"]),
    (r.NoRoleAllowance(7), ["<@&7> has no allowance"]),
    (r.BadImage("image", "a.gif", "type", content_type="image/gif"), ["a.gif", "image/gif"]),
    (r.BadImage("image", "a.png", "too_big", size=60 * 2**20), ["60.0 MB"]),
    (r.BadImage("image", "a.png", "no_size"), ["could not read the size of `a.png`"]),
    (r.BadImage("image", "a.png", "too_small", width=64, height=64), ["64×64 px"]),
    (r.BadImage("image", "a.png", "too_thin", width=900, height=100), ["too long and thin"]),
    (r.BadAudio("music", "a.ogg", "type", content_type="audio/ogg"), ["audio/ogg"]),
    (r.BadAudio("music", "a.mp3", "too_big", size=21 * 2**20), ["21.0 MB"]),
    (r.UnknownSubjects((3, 5)), ["@3, @5", "`subject3`, `subject5`"]),
    (r.BadVoices("unreadable", text="1-voice"), ["`1-voice`"]),
    (r.BadVoices("not_attached", subject=4), ["`subject4` is not attached"]),
    (r.BadVoices("twice", subject=2), ["subject 2 twice"]),
]


def kinds(base: type[r.Refusal]) -> set[type[r.Refusal]]:
    found: set[type[r.Refusal]] = set()
    for sub in base.__subclasses__():
        found |= {sub, *kinds(sub)}
    return found


def test_every_kind_of_refusal_has_a_sample_here() -> None:
    assert kinds(r.Refusal) == {type(refusal) for refusal, _ in SAMPLES}


@pytest.mark.parametrize(("refusal", "expected"), SAMPLES, ids=lambda v: type(v).__name__)
def test_each_refusal_reads_as_its_facts(refusal: r.Refusal, expected: list[str]) -> None:
    text = refusal_text(refusal)
    assert text != UNWORDED
    for part in expected:
        assert part in text, text


def test_a_refusal_is_its_code_and_facts_in_logs_not_a_sentence() -> None:
    refusal = r.NotEnoughCredits(30, 1, None)
    assert refusal.code == "not_enough_credits"
    assert str(refusal).startswith("not_enough_credits:") and "30" in str(refusal)


def test_channel_and_role_references_become_mentions() -> None:
    assert mentions("channels: {channel:5}, {channel:12}") == "channels: <#5>, <#12>"
    assert mentions("role allowance: {role:7} gets 5") == "role allowance: <@&7> gets 5"
    assert mentions("no channels here {channel:x}") == "no channels here {channel:x}"
