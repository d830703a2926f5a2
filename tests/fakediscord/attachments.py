"""Attachments and the CDN: uploads become attachments with signed, expiring links.

Every attachment (a file the bot uploads, or one a member attaches to a slash command) gets a
CDN URL signed with ``ex``/``is``/``hm`` like Discord's; links die after ``attachment_ttl``
(fake clock) or ``expire_attachment``; ``POST /attachments/refresh-urls`` signs new ones;
``delete_attachment`` makes an attachment 404 for good. Also here: upload size limits
(413 / 40005) and how multipart uploads map onto a message's attachment list.
"""

from __future__ import annotations

import hashlib
import hmac
import mimetypes
import re
import secrets
import struct
import urllib.parse
from typing import Any, ClassVar

from aiohttp import web

from .core import FakeCore, RouteSpec, route
from .errors import DiscordError, form_error
from .models import (
    DM_UPLOAD_LIMIT,
    FakeChannel,
    RecordedRequest,
    StoredAttachment,
    UploadedFile,
)


def _image_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return width, height
    return None


def _guess_type(filename: str, declared: str | None) -> str | None:
    if declared and declared != "application/octet-stream":
        return declared
    guessed, _ = mimetypes.guess_type(filename)
    return guessed or declared


class AttachmentsMixin(FakeCore):
    """Stored attachments, their CDN links, and upload limits."""

    ROUTES: ClassVar[tuple[RouteSpec, ...]] = (
        route("POST", r"/attachments/refresh-urls", "_r_refresh_urls"),
    )

    attachments: dict[int, StoredAttachment]
    _attachment_generation: dict[int, int]  # bumped by expire_attachment: old links stop working
    _secret: bytes  # signs CDN links

    def _init_attachments(self) -> None:
        self.attachments = {}
        self._attachment_generation = {}
        self._secret = secrets.token_bytes(16)

    def _sign(self, attachment_id: int, ex: int) -> str:
        gen = self._attachment_generation.get(attachment_id, 0)
        raw = f"{attachment_id}:{ex}:{gen}".encode()
        return hmac.new(self._secret, raw, hashlib.sha256).hexdigest()[:32]

    def _cdn_url(
        self, kind: str, owner_id: int, attachment_id: int, filename: str, *, media: bool = False
    ) -> tuple[str, float]:
        issued = int(self.now())
        ex = int(issued + self.attachment_ttl)
        host = self.base_url + ("/media" if media else "/cdn")
        quoted = urllib.parse.quote(filename)
        url = f"{host}/{kind}/{owner_id}/{attachment_id}/{quoted}?ex={ex:x}&is={issued:x}&hm={self._sign(attachment_id, ex)}&"
        return url, float(ex)

    def _new_attachment(
        self,
        kind: str,
        owner_id: int,
        *,
        filename: str,
        content_type: str | None,
        data: bytes,
        size: int | None = None,
        width: int | None = None,
        height: int | None = None,
        description: str | None = None,
        ephemeral: bool = False,
        duration_secs: float | None = None,
    ) -> StoredAttachment:
        aid = self.snowflake()
        url, expires = self._cdn_url(kind, owner_id, aid, filename)
        proxy_url, _ = self._cdn_url(kind, owner_id, aid, filename, media=True)
        if width is None and height is None:
            dims = _image_size(data)
            if dims is not None:
                width, height = dims
        att = StoredAttachment(
            id=aid,
            filename=filename,
            content_type=content_type,
            size=len(data) if size is None else size,
            data=data,
            url=url,
            proxy_url=proxy_url,
            expires_at=expires,
            width=width,
            height=height,
            description=description,
            ephemeral=ephemeral,
            duration_secs=duration_secs,
            kind=kind,
            owner_id=owner_id,
        )
        self.attachments[aid] = att
        return att

    def expire_attachment(self, attachment: StoredAttachment | int | str) -> None:
        """Every URL handed out so far for this attachment stops working (refresh still works)."""
        att = self._attachment(attachment)
        self._attachment_generation[att.id] = self._attachment_generation.get(att.id, 0) + 1
        att.expires_at = self.now() - 1

    def delete_attachment(self, attachment: StoredAttachment | int | str) -> None:
        """The attachment is gone for good: 404 on the CDN, and refresh-urls cannot revive it."""
        att = self._attachment(attachment)
        att.deleted = True

    def expire_all_attachments(self) -> None:
        for att in self.attachments.values():
            self.expire_attachment(att)

    def _attachment(self, ref: StoredAttachment | int | str) -> StoredAttachment:
        if isinstance(ref, StoredAttachment):
            return ref
        if isinstance(ref, str) and not ref.isdigit():
            aid = self._attachment_id_from_url(ref)
            if aid is None:
                raise LookupError(f"not an attachment URL of this fake: {ref}")
            return self.attachments[aid]
        return self.attachments[int(ref)]

    def _attachment_id_from_url(self, url: str) -> int | None:
        m = re.search(r"/(?:cdn|media)/(?:ephemeral-)?attachments/\d+/(\d+)/", url)
        return int(m.group(1)) if m else None

    # ------------------------------------------------------------------ uploads

    def upload_limit_for(self, channel: FakeChannel) -> int:
        if channel.guild_id is None:
            return DM_UPLOAD_LIMIT
        return self.guilds[channel.guild_id].upload_limit

    def _check_sizes(
        self, channel: FakeChannel, files: list[UploadedFile], limit: int | None = None
    ) -> None:
        limit = self.upload_limit_for(channel) if limit is None else limit
        for f in files:
            if f.size > limit:
                raise DiscordError(413, 40005)

    def _attachments_from_upload(
        self,
        channel: FakeChannel,
        body: dict[str, Any],
        files: list[UploadedFile],
        existing: list[StoredAttachment] | None = None,
    ) -> list[StoredAttachment]:
        meta: dict[int, dict[str, Any]] = {}
        keep_ids: set[int] | None = None
        listed = body.get("attachments")
        if isinstance(listed, list):
            keep_ids = set()
            for entry in listed:
                try:
                    ident = int(entry.get("id"))
                except (TypeError, ValueError):
                    continue
                if existing and any(a.id == ident for a in existing):
                    keep_ids.add(ident)
                else:
                    meta[ident] = entry
        result = [a for a in existing or [] if keep_ids is None or a.id in keep_ids]
        for index, f in enumerate(files):
            m = re.match(r"^files\[(\d+)\]$", f.field)
            slot = int(m.group(1)) if m else index
            info = meta.get(slot, {})
            filename = str(info.get("filename") or f.filename)
            result.append(
                self._new_attachment(
                    "attachments",
                    channel.id,
                    filename=filename,
                    content_type=_guess_type(filename, f.content_type),
                    data=f.data,
                    description=info.get("description"),
                )
            )
        return result

    # ------------------------------------------------------------------ REST and the CDN

    async def _r_refresh_urls(self, rec: RecordedRequest) -> Any:
        body = rec.json if isinstance(rec.json, dict) else {}
        urls = body.get("attachment_urls")
        if not isinstance(urls, list) or not urls:
            raise form_error("attachment_urls", "BASE_TYPE_REQUIRED", "This field is required")
        if len(urls) > 50:
            raise form_error(
                "attachment_urls", "BASE_TYPE_MAX_LENGTH", "Must be 50 or fewer in length."
            )
        out = []
        for url in urls:
            aid = self._attachment_id_from_url(str(url))
            att = self.attachments.get(aid) if aid is not None else None
            refreshed = str(url)
            if att is not None and not att.deleted and self.refresh_urls_enabled:
                refreshed, att.expires_at = self._cdn_url(
                    att.kind, att.owner_id, att.id, att.filename
                )
                att.url = refreshed
            out.append({"original": url, "refreshed": refreshed})
        return {"refreshed_urls": out}

    async def _cdn(self, rec: RecordedRequest, request: web.Request) -> web.StreamResponse:
        gone = web.Response(status=404, text="This content is no longer available.")
        aid = self._attachment_id_from_url(rec.path + "/")
        att = self.attachments.get(aid) if aid is not None else None
        if att is None or att.deleted:
            rec.status = 404
            return gone
        try:
            ex = int(request.query.get("ex", ""), 16)
        except ValueError:
            return gone
        if (
            not hmac.compare_digest(request.query.get("hm", ""), self._sign(att.id, ex))
            or self.now() >= ex
        ):
            return gone
        att.downloads += 1
        return web.Response(
            body=att.data, content_type=att.content_type or "application/octet-stream"
        )
