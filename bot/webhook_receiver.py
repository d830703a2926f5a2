"""The webhook receiver: `POST /webhooks/vidu/<token>`, where the video service says a task
ended (only when WEBHOOK_PUBLIC_URL is set).

Each job's address ends with its own unguessable token (`bot.core.submitting`). Nothing in
the body is believed: the token names the job, and the job is read at once through the
Task Result API (`Lifecycle.webhook_hint`); polling goes on as before if no webhook ever
comes. A token no job has is answered 404 and changes nothing; a body naming another task
than the token's job is answered 409 and changes nothing (whoever sent it knows the
address but not the task); anything else known is answered 202 at once, before the read,
so the service never waits on the bot.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.core.submitting import WEBHOOK_PATH
from bot.listening import Listener

if TYPE_CHECKING:
    from bot.core.lifecycle import Lifecycle

log = logging.getLogger(__name__)

# Tokens are secrets.token_urlsafe(24): 32 characters of [A-Za-z0-9_-].
TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
MAX_BODY = 1024 * 1024  # a result body is a few kilobytes
ANSWERS = {"read": 202, "noted": 202, "mismatch": 409, "unknown": 404}


def webhook_app(lifecycle: Lifecycle, wake: Callable[[], None]) -> web.Application:
    """The receiver's routes: a webhook asks `lifecycle` for a read and `wake`s the poller."""

    async def receive(request: web.Request) -> web.Response:
        token = request.match_info["token"]
        if not TOKEN.fullmatch(token):
            return web.Response(status=404)
        task_id = task_id_of(await request.read())
        answer = await lifecycle.webhook_hint(token, task_id)
        if answer == "read":
            wake()
        return web.Response(status=ANSWERS[answer])

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post(WEBHOOK_PATH + "/{token}", receive)
    return app


def task_id_of(body: bytes) -> str | None:
    """The task a webhook body names (`payload.task.task_id`), or None when it names none
    (the token alone then names the job)."""
    try:
        data: Any = json.loads(body)
        task_id = data["payload"]["task"]["task_id"]
    except (ValueError, KeyError, TypeError):
        return None
    return task_id if isinstance(task_id, str) and task_id else None


def webhook_receiver(
    lifecycle: Lifecycle, wake: Callable[[], None], host: str, port: int
) -> Listener:
    """`async with webhook_receiver(...)`: listening on host:port until the block ends."""
    return Listener(
        webhook_app(lifecycle, wake),
        host,
        port,
        settings_named="WEBHOOK_HOST / WEBHOOK_PORT",
        path=WEBHOOK_PATH,
    )
