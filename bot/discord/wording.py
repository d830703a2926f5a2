"""What a member reads when the core refuses: one sentence or two per refusal, saying what
to change. The core hands over facts (`bot.core.refusals`); the words are chosen here."""

from __future__ import annotations

import re
from datetime import datetime

from bot.api.models import IMAGE_MIN_SIDE
from bot.core import refusals as r

MB = 1024 * 1024
REFERENCE = re.compile(r"\{(channel|role):(\d+)\}")
MENTION = {"channel": "<#{}>", "role": "<@&{}>"}
# For a refusal added to the core without words here yet; a test keeps this unused.
UNWORDED = "I can't do that."


def credits(amount: int) -> str:
    return f"{amount} credit" if amount == 1 else f"{amount} credits"


def when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def mentions(text: str) -> str:
    """A core text with its `{channel:ID}` and `{role:ID}` references as Discord mentions."""
    return REFERENCE.sub(lambda m: MENTION[m.group(1)].format(m.group(2)), text)


def refusal_text(refusal: r.Refusal) -> str:
    match refusal:
        case r.UnknownModel(model=model, known=known):
            return f"There is no video model called `{model}`. Choose one of: {', '.join(known)}."
        case r.ModelDisabled(model=model, enabled=enabled):
            hint = (
                f" Choose one of: {', '.join(enabled)}."
                if enabled
                else " Ask a moderator to enable one."
            )
            return f"The model `{model}` is turned off on this server.{hint}"
        case r.ChannelNotAllowed(allowed_channels=channels):
            where = ", ".join(f"<#{c}>" for c in channels)
            return f"Videos can't be made in this channel. Use {where}."
        case r.Blocked():
            return (
                "You are blocked from making videos on this server. "
                "Ask a moderator if you think this is a mistake."
            )
        case r.TooManyJobs(running=running, limit=limit):
            return (
                f"You already have {running} video{'s' if running != 1 else ''} in progress "
                f"(the limit here is {limit}). Wait for one to finish, then try again."
            )
        case r.NotEnoughCredits(price=price, available=left, resets_at=resets):
            advice = " Choose a shorter duration or a lower resolution"
            if resets is not None:
                advice += f", or wait for your allowance to renew on {when(resets)}"
            return f"This video costs {credits(price)}, but you have {credits(left)} left.{advice}."
        case r.GuildCapReached(cap=cap, left=left, price=price, resets_at=tomorrow):
            return (
                f"This server has reached its daily limit of {credits(cap)} "
                f"({credits(left)} left today; this video costs {credits(price)}). "
                f"Choose a cheaper video or try again after {when(tomorrow)}."
            )
        case r.OperatorCapReached(price=price, resets_at=tomorrow):
            return (
                "The bot has reached its daily video budget across all servers "
                f"(this video costs {credits(price)}). "
                f"Choose a cheaper video or try again after {when(tomorrow)}."
            )
        case r.InvalidRequest(detail=detail):
            return detail
        case r.JobNotFound(job_id=job_id, of_member=True):
            return (
                f"There is no job #{job_id} of yours on this server. "
                "Check the number in your history."
            )
        case r.JobNotFound(job_id=job_id):
            return f"There is no job #{job_id} on this server any more."
        case r.RerollBusy(job_id=job_id):
            return f"Your re-roll of job #{job_id} is already on its way."
        case r.InputsGone(job_id=job_id):
            return (
                f"The images of job #{job_id} are no longer stored on Discord, so it cannot be "
                "re-rolled. Start a new `/video` command with them attached."
            )
        case r.OutOfRange(option=option, low=None, high=None):
            return f"Give a number of {option} other than 0; nothing was changed."
        case r.OutOfRange(option=option, low=low, high=None):
            return f"`{option}` must be {low} or more; nothing was changed."
        case r.OutOfRange(option=option, low=low, high=high):
            return f"`{option}` must be between {low} and {high}; nothing was changed."
        case r.NotOneOf(option=option, choices=choices):
            return f"`{option}` must be one of: {', '.join(choices)}."
        case r.NoBonusToTake():
            return "This member has no unused bonus credits to take away."
        case r.NoModelLeft():
            return "Enable at least one model (or all of them)."
        case r.NoRoleAllowance(role_id=role):
            return f"<@&{role}> has no allowance of its own here; nothing was changed."
        case r.SettingsChanged():
            return (
                "Another moderator changed these settings just now; nothing was changed. "
                "Look at `/video-settings show` and try again."
            )
        case r.BadImage() as bad:
            return _image_text(bad)
        case r.BadAudio(option=option, filename=name, problem="type", content_type=kind):
            shown = kind or "an unknown type"
            return f"`{option}` must be an MP3, WAV, M4A or FLAC file; `{name}` is {shown}."
        case r.BadAudio(option=option, size=size):
            return f"`{option}` is {size / MB:.1f} MB; music can be at most 20 MB."
        case r.UnknownSubjects(missing=missing):
            names = ", ".join(f"@{n}" for n in missing)
            attach = ", ".join(f"`subject{n}`" for n in missing)
            return (
                f"The prompt names {names}, but {attach} is not attached. "
                "Attach it, or take it out of the prompt."
            )
        case r.BadVoices(problem="unreadable", text=text):
            return (
                f"I could not read `voices`: `{text}`. Write pairs like `1=voice_a 2=voice_b` "
                "(subject number = voice id; letters, digits, `_ - .`)."
            )
        case r.BadVoices(problem="not_attached", subject=n):
            return f"`voices` gives subject {n} a voice, but `subject{n}` is not attached."
        case r.BadVoices(subject=n):
            return f"`voices` names subject {n} twice."
    return UNWORDED


def _image_text(bad: r.BadImage) -> str:
    option, size = bad.option, f"{bad.width}×{bad.height} px"
    match bad.problem:
        case "type":
            shown = bad.content_type or "an unknown type"
            return f"`{option}` must be a JPEG, PNG or WebP image; `{bad.filename}` is {shown}."
        case "too_big":
            return f"`{option}` is {bad.size / MB:.1f} MB; images can be at most 50 MB."
        case "no_size":
            return (
                f"I could not read the size of `{bad.filename}`; attach it again as a "
                "JPEG, PNG or WebP image."
            )
        case "too_small":
            return (
                f"`{option}` is {size}; images must be at least "
                f"{IMAGE_MIN_SIDE}×{IMAGE_MIN_SIDE} px."
            )
        case "too_thin":
            return (
                f"`{option}` is {size}, too long and thin; the sides may differ by at most 4 "
                "times (between 1:4 and 4:1). Crop it and try again."
            )
