"""How a job looks on Discord: its public card, one line of history, and the words of its
ending. Pure rendering: nothing here talks to Discord."""

from __future__ import annotations

import datetime as dt

import discord

from bot.api.models import Q2ReferenceToVideoRequest, Q3ImageToVideoRequest, RequestValidationError
from bot.core.catalog import CATALOG, JobRequest, request_of
from storage.models import ACTIVE_STATES, CHARGED_STATES, RELEASED_STATES, Job, JobState

STATE_LOOK: dict[JobState, tuple[str, discord.Colour]] = {
    JobState.SUBMITTING: ("Submitting", discord.Colour.light_grey()),
    JobState.QUEUED: ("Queued", discord.Colour.blurple()),
    JobState.PROCESSING: ("Rendering", discord.Colour.blue()),
    JobState.SUCCEEDED: ("Finished, posting the video", discord.Colour.teal()),
    JobState.DELIVERED: ("Done", discord.Colour.green()),
    JobState.FAILED: ("Failed", discord.Colour.red()),
    JobState.REJECTED: ("Refused by the video service", discord.Colour.red()),
    JobState.LOST: ("Lost", discord.Colour.dark_grey()),
    JobState.UNDELIVERABLE: ("Finished, but I could not post it", discord.Colour.orange()),
    JobState.EXPIRED: ("Timed out", discord.Colour.dark_grey()),
}


# Between reads the bar moves with the time the job is expected to take, up to this much:
# only the service says when it is done.
EXTRAPOLATED_CAP = 95
UNDER_WAY = frozenset({JobState.QUEUED, JobState.PROCESSING})


def shown_progress(job: Job, now: dt.datetime) -> int:
    """The percentage a card shows: the service's latest, or between reads of a job under
    way, the share of its expected time (submission to expected end) that has passed (reads
    are for detecting the end, not for drawing); never less than the service said."""
    if job.state not in UNDER_WAY or job.expected_at is None:
        return job.progress
    total = (job.expected_at - job.created_at).total_seconds()
    if total <= 0:
        return job.progress
    guess = int(100 * (now - job.created_at).total_seconds() / total)
    return max(job.progress, min(EXTRAPOLATED_CAP, guess))


def requester_only(user_id: int) -> discord.AllowedMentions:
    """The one mention the bot ever allows: the member whose video it is."""
    return discord.AllowedMentions(
        everyone=False, roles=False, replied_user=False, users=[discord.Object(user_id)]
    )


def progress_bar(percent: int, width: int = 12) -> str:
    filled = max(0, min(width, round(percent / 100 * width)))
    return "▰" * filled + "▱" * (width - filled)


def request_shown(job: Job) -> JobRequest | None:
    """The job's request, or None for a stored body this version cannot read."""
    try:
        return request_of(job.model, job.params)
    except (RequestValidationError, ValueError):
        return None


def prompt_of(job: Job) -> str:
    request = request_shown(job)
    return request.prompt.strip() if request is not None else ""


def describe_parameters(job: Job) -> str:
    request = request_shown(job)
    if request is None:
        return job.model
    parts = [f"{request.duration} s", request.resolution]
    if request.aspect_ratio:
        parts.append(request.aspect_ratio)
    if isinstance(request, Q3ImageToVideoRequest):
        parts.append(f"style {request.style}")
        audio_type = getattr(request, "audio_type", None)
        if audio_type:
            parts.append(f"audio {audio_type}")
    if isinstance(request, Q2ReferenceToVideoRequest) and request.movement_amplitude:
        parts.append(f"movement {request.movement_amplitude}")
    if request.seed is not None:
        parts.append(f"seed {request.seed}")
    if isinstance(request, Q3ImageToVideoRequest):
        if request.off_peak:
            parts.append("off-peak")
        if request.audio:
            parts.append("custom music")
    else:
        if request.bgm:
            parts.append("music")
        parts.append(f"{len(request.subjects)} subject(s)")
    return " · ".join(parts)


def what_happened(job: Job) -> str:
    """Why a job ended (or is stuck), and whether its credits came back, said once."""
    reason = job.failure_reason or "The video could not be made."
    if job.state in RELEASED_STATES and "returned" not in reason:
        reason += f" The {job.price} credits were returned to you."
    return reason


def waiting_text(job: Job) -> str | None:
    """For a submission the video service has not confirmed: what is happening and when
    the credits come back (None for any other job)."""
    if job.state is not JobState.SUBMITTING or job.next_poll_at is None:
        return None
    deadline = job.next_poll_at
    return (
        "Waiting for the video service to confirm that it started this video. If it has "
        f"not by {discord.utils.format_dt(deadline, 't')} "
        f"({discord.utils.format_dt(deadline, 'R')}), the job is given up and the "
        f"{job.price} credits come back."
    )


def price_note(job: Job) -> str:
    if job.state in RELEASED_STATES:
        return "returned"
    return "charged" if job.state in CHARGED_STATES else "held"


# The card's title begins so (found again by it in a channel's history after a lost answer).
CARD_TITLE = "Video job #{id} · "


def job_card(job: Job) -> discord.Embed:
    """The public card of a job: who asked, what, for how much, and how far along it is."""
    title, colour = STATE_LOOK.get(job.state, (job.state.value.title(), discord.Colour.default()))
    prompt = prompt_of(job) or "*(no prompt)*"
    if len(prompt) > 1000:
        prompt = prompt[:999] + "…"
    embed = discord.Embed(
        title=CARD_TITLE.format(id=job.id) + title, description=prompt, colour=colour
    )
    spec = CATALOG.get(job.model)
    embed.add_field(name="Requested by", value=f"<@{job.user_id}>", inline=True)
    embed.add_field(name="Model", value=spec.label if spec else job.model, inline=True)
    embed.add_field(name="Price", value=f"{job.price} credits ({price_note(job)})", inline=True)
    embed.add_field(name="Parameters", value=describe_parameters(job), inline=False)
    waiting = waiting_text(job)
    if waiting is not None:
        embed.add_field(name="Waiting for the video service", value=waiting, inline=False)
    elif job.state in ACTIVE_STATES:
        now = discord.utils.utcnow()
        percent = shown_progress(job, now)
        line = f"{progress_bar(percent)} {percent}%"
        if job.eta:
            finish = now + dt.timedelta(seconds=job.eta)
            line += f" · ready {discord.utils.format_dt(finish, 'R')}"
        elif job.expected_at is not None and job.expected_at > now:
            # A relative timestamp counts down in the member's client, with no edits.
            line += f" · likely ready {discord.utils.format_dt(job.expected_at, 'R')}"
        elif job.off_peak:
            line += " · off-peak: may take hours"
        embed.add_field(name="Progress", value=line, inline=False)
    if job.failure_reason and job.state is not JobState.DELIVERED:
        # For a job still waiting, this says why it waits.
        embed.add_field(name="What happened", value=what_happened(job)[:1024], inline=False)
    if job.reroll_of:
        embed.set_footer(text=f"Re-roll of job #{job.reroll_of}")
    embed.timestamp = job.created_at
    return embed


def expiry_text(job: Job) -> str:
    if job.result_expires_at is None:
        return "The link may expire soon."
    return f"The link expires {discord.utils.format_dt(job.result_expires_at, 'R')}."


def history_line(job: Job) -> str:
    when = discord.utils.format_dt(job.created_at, "R")
    head = f"**#{job.id}** · {job.state.value.lower()} · {job.price} credits · {when}"
    if job.result_url and job.state in CHARGED_STATES:
        alive = job.result_expires_at is None or job.result_expires_at > discord.utils.utcnow()
        return f"{head} · [video]({job.result_url})" if alive else f"{head} · link expired"
    if job.failure_reason and job.state not in {JobState.SUCCEEDED, JobState.DELIVERED}:
        return f"{head}\n  {job.failure_reason[:150]}"
    return head
