"""The bot answers interactions: the initial callback, followups and webhook edits.

``POST /interactions/{id}/{token}/callback`` enforces Discord's rules: one callback only
(40060), within ``interaction_deadline`` (10062), of a type valid for the interaction.
Followups and ``/webhooks/{app}/{token}/messages/@original|{id}`` work for
``interaction_token_ttl``; the first followup after a "thinking" defer replaces the loading
message. Every answer is recorded on the ``FakeInteraction`` (``responses``, ``callback``,
``rejections``) for the test to inspect.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .core import RouteSpec, route
from .errors import DiscordError, form_error
from .interactions import (
    ALLOWED_CALLBACKS,
    AUTOCOMPLETE_RESULT,
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE_MESSAGE,
    MODAL,
    UPDATE_MESSAGE,
    FakeInteraction,
    InteractionEvent,
)
from .invoke import InvokeMixin
from .models import FLAG_EPHEMERAL, FLAG_LOADING, RecordedRequest, StoredMessage
from .validation import validate_message_body

_WEBHOOK = r"/webhooks/{app_id}/(?P<token>[^/]+)"
_WEBHOOK_MESSAGE = _WEBHOOK + r"/messages/(?P<message_id>@original|\d+)"


class CallbacksMixin(InvokeMixin):
    """The interaction callback and webhook routes (no bot token: the interaction token)."""

    ROUTES: ClassVar[tuple[RouteSpec, ...]] = (
        route(
            "POST",
            r"/interactions/{interaction_id}/(?P<token>[^/]+)/callback",
            "_r_interaction_callback",
            auth=False,
        ),
        route("POST", _WEBHOOK, "_r_followup", auth=False),
        route("GET", _WEBHOOK_MESSAGE, "_r_webhook_get", auth=False),
        route("PATCH", _WEBHOOK_MESSAGE, "_r_webhook_edit", auth=False),
        route("DELETE", _WEBHOOK_MESSAGE, "_r_webhook_delete", auth=False),
    )

    def _reject(self, inter: FakeInteraction | None, route: str, err: DiscordError) -> DiscordError:
        if inter is not None:
            inter.rejections.append((route, err.code))
        return err

    def _record(self, inter: FakeInteraction, event: InteractionEvent) -> None:
        inter.responses.append(event)
        if event.message is not None and event.message.id not in inter.message_ids:
            inter.message_ids.append(event.message.id)

    async def _r_interaction_callback(
        self, rec: RecordedRequest, interaction_id: str, token: str
    ) -> Any:
        inter = self.interactions.get(int(interaction_id))
        if inter is None or inter.token != token:
            raise DiscordError(404, 10062)
        if inter.callback is not None:
            raise self._reject(inter, rec.route, DiscordError(400, 40060))
        if (
            self.interaction_deadline is not None
            and self.now() - inter.created_at > self.interaction_deadline
        ):
            raise self._reject(inter, rec.route, DiscordError(404, 10062))
        body = rec.json if isinstance(rec.json, dict) else {}
        ctype = int(body.get("type", 0))
        data = body.get("data") or {}
        if ctype not in ALLOWED_CALLBACKS.get(inter.type, set()):
            raise self._reject(
                inter,
                rec.route,
                form_error(
                    "type",
                    "INTERACTION_RESPONSE_TYPE_INVALID",
                    f"Callback type {ctype} is invalid here",
                ),
            )
        channel = self.channels[inter.channel_id]
        ephemeral = bool(int(data.get("flags") or 0) & FLAG_EPHEMERAL)
        message: StoredMessage | None = None
        if ctype == CHANNEL_MESSAGE:
            self._check_sizes(
                channel,
                rec.files,
                self.guilds[inter.guild_id].upload_limit if inter.guild_id else None,
            )
            message = self._create_message(
                channel,
                data,
                rec.files,
                author_id=self.bot_user.id,
                interaction=inter,
                message_type=20 if inter.type == 2 else 19,
            )
            inter.original_id = message.id
        elif ctype == DEFERRED_CHANNEL_MESSAGE:
            message = self._create_message(
                channel,
                {"content": ""},
                [],
                author_id=self.bot_user.id,
                interaction=inter,
                extra_flags=FLAG_LOADING | (FLAG_EPHEMERAL if ephemeral else 0),
                message_type=20 if inter.type == 2 else 19,
                validate=False,
            )
            inter.original_id = message.id
        elif ctype in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE):
            source = self._messages.get(inter.source_message_id or 0)
            if source is None:
                raise self._reject(inter, rec.route, DiscordError(404, 10008))
            ephemeral = source.ephemeral
            if ctype == UPDATE_MESSAGE:
                self._edit_message(source, data, rec.files)
            inter.original_id = source.id
            message = source
        elif ctype == AUTOCOMPLETE_RESULT:
            choices = data.get("choices") or []
            if len(choices) > 25:
                raise self._reject(
                    inter,
                    rec.route,
                    form_error(
                        "data.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
                    ),
                )
            for i, choice in enumerate(choices):
                if not 1 <= len(str(choice.get("name", ""))) <= 100:
                    raise self._reject(
                        inter,
                        rec.route,
                        form_error(
                            f"data.choices.{i}.name",
                            "BASE_TYPE_BAD_LENGTH",
                            "Must be between 1 and 100 in length.",
                        ),
                    )
            inter.choices = list(choices)
        elif ctype == MODAL:
            inter.modal = data
        event = InteractionEvent("callback", ctype, data, list(rec.files), message, ephemeral)
        inter.callback = event
        self._record(inter, event)
        if rec.query.get("with_response") not in ("1", "true", "True"):
            return None
        result: dict[str, Any] = {
            "interaction": {
                "id": str(inter.id),
                "type": inter.type,
                "response_message_id": str(message.id) if message is not None else None,
                "response_message_loading": ctype == DEFERRED_CHANNEL_MESSAGE,
                "response_message_ephemeral": ephemeral,
            }
        }
        if message is not None and ctype != DEFERRED_UPDATE_MESSAGE:
            result["resource"] = {"type": ctype, "message": self.message_payload(message)}
        elif ctype in (AUTOCOMPLETE_RESULT, MODAL):
            result["resource"] = {"type": ctype}
        return result

    def _webhook_interaction(
        self, rec: RecordedRequest, app_id: str, token: str
    ) -> FakeInteraction:
        if int(app_id) != self.application_id:
            raise DiscordError(404, 10015)
        inter = self._interactions_by_token.get(token)
        if inter is None:
            raise DiscordError(401, 50027)
        if self.now() - inter.created_at > self.interaction_token_ttl:
            raise self._reject(inter, rec.route, DiscordError(401, 50027))
        return inter

    def _interaction_message(
        self, inter: FakeInteraction, message_id: str, rec: RecordedRequest
    ) -> StoredMessage:
        if message_id == "@original":
            if inter.callback is None or inter.original_id is None:
                raise self._reject(inter, rec.route, DiscordError(404, 10008))
            msg = self._messages.get(inter.original_id)
        else:
            mid = int(message_id)
            msg = (
                self._messages.get(mid)
                if (mid in inter.message_ids or mid == inter.original_id)
                else None
            )
        if msg is None or msg.deleted:
            raise self._reject(inter, rec.route, DiscordError(404, 10008))
        return msg

    async def _r_followup(self, rec: RecordedRequest, app_id: str, token: str) -> Any:
        inter = self._webhook_interaction(rec, app_id, token)
        if inter.callback is None:
            raise self._reject(inter, rec.route, DiscordError(404, 10015))
        body = rec.json if isinstance(rec.json, dict) else {}
        channel = self.channels[inter.channel_id]
        if channel.deleted:
            raise self._reject(inter, rec.route, DiscordError(404, 10003))
        self._check_sizes(channel, rec.files)
        original = self._messages.get(inter.original_id or 0)
        if (
            original is not None
            and original.loading
            and inter.callback.type == DEFERRED_CHANNEL_MESSAGE
        ):
            # Discord's rule: the first followup after a "thinking" defer replaces the loading
            # message, and keeps the defer's visibility (its own ephemeral flag is ignored).
            validate_message_body(body, rec.files, creating=True)
            self._edit_message(original, {k: v for k, v in body.items() if k != "flags"}, rec.files)
            message = original
            if message.id not in inter.followup_ids:
                inter.followup_ids.append(message.id)
        else:
            flags = int(body.get("flags") or 0)
            message = self._create_message(
                channel,
                body,
                rec.files,
                author_id=self.bot_user.id,
                interaction=inter,
                extra_flags=flags & FLAG_EPHEMERAL,
                message_type=20 if inter.type == 2 else 19,
            )
            inter.followup_ids.append(message.id)
        self._record(
            inter,
            InteractionEvent("followup", None, body, list(rec.files), message, message.ephemeral),
        )
        if rec.query.get("wait") in ("1", "true", "True"):
            return self.message_payload(message)
        return None

    async def _r_webhook_get(
        self, rec: RecordedRequest, app_id: str, token: str, message_id: str
    ) -> Any:
        inter = self._webhook_interaction(rec, app_id, token)
        msg = self._interaction_message(inter, message_id, rec)
        return self.message_payload(msg)

    async def _r_webhook_edit(
        self, rec: RecordedRequest, app_id: str, token: str, message_id: str
    ) -> Any:
        inter = self._webhook_interaction(rec, app_id, token)
        msg = self._interaction_message(inter, message_id, rec)
        body = rec.json if isinstance(rec.json, dict) else {}
        self._edit_message(msg, body, rec.files)
        self._record(
            inter,
            InteractionEvent(
                "edit", None, body, list(rec.files), msg, msg.ephemeral, target=message_id
            ),
        )
        return self.message_payload(msg)

    async def _r_webhook_delete(
        self, rec: RecordedRequest, app_id: str, token: str, message_id: str
    ) -> Any:
        inter = self._webhook_interaction(rec, app_id, token)
        msg = self._interaction_message(inter, message_id, rec)
        msg.deleted = True
        self._dispatch_message_event("MESSAGE_DELETE", msg)
        self._record(
            inter, InteractionEvent("delete", None, {}, [], msg, msg.ephemeral, target=message_id)
        )
        return None
