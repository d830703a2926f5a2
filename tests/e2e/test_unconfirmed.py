"""A submission the video service never confirms: the member is told what is happening and
when the credits come back, and the job is given up then without blaming a stop."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.core import moves
from storage.models import JobState
from tests.e2e.conftest import World, image
from tests.e2e.helpers import card_of, card_shows, embed_text, finished

GRACE = timedelta(seconds=1)


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"submit_timeout_seconds": 1.0}


@pytest.mark.parametrize("fault", ["503", "dropped", "unreadable"])
async def test_an_unconfirmed_submission_says_so_and_returns_the_credits_on_time(
    world: World, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    monkeypatch.setattr(moves, "UNKNOWN_GRACE", GRACE)
    if fault == "503":
        world.sim.fail_next("submit", status=503)
    elif fault == "dropped":
        world.sim.disconnect_next("submit")
    else:
        world.sim.malformed_next("submit", body=b"<html>ok</html>")
    interaction = await world.slash(
        "video animate", options={"prompt": "a cat waves"}, attachments={"image": image()}
    )
    [reply] = interaction.texts
    assert "Waiting for the video service to confirm" in reply, reply
    assert "credits come back" in reply and "<t:" in reply  # when, as a Discord timestamp

    [job] = await world.jobs()
    assert job.state is JobState.SUBMITTING and job.next_poll_at is not None
    card = card_of(world, job)
    shown = embed_text(card.embeds[0])
    assert "Waiting for the video service" in shown and "credits come back" in shown
    assert (await world.core.moderation.balance(world.guild.id, world.member.id)).held == 30

    lost = await finished(world, job, JobState.LOST, timeout=10)
    assert lost.failure_reason is not None and "never confirmed" in lost.failure_reason
    card = await card_shows(world, job, "were returned")
    assert "stopped" not in embed_text(card.embeds[0])
    balance = await world.core.moderation.balance(world.guild.id, world.member.id)
    assert (balance.held, balance.used) == (0, 0)
    assert len(world.sim.submissions) == 1  # never sent twice
