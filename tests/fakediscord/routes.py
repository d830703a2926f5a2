"""The HTTP side: every request is recorded, checked against the faults, then routed.

``_handle_http`` serves everything but the gateway: it strips ``/api[/vN]``, records a
``RecordedRequest`` (Authorization redacted; JSON or multipart ``payload_json`` + files),
applies an injected fault if one matches (faults.py: an error, a hang-up, or a hold that keeps
the answer until the test releases it), else dispatches to the handler of the
first route that matches. The routing table is collected from the ``ROUTES`` every mixin
declares; CDN paths (``/cdn``, ``/media``) go to attachments.py. Unknown routes answer 404 and
land in ``unhandled``. ``find_requests`` / ``wait_for_request`` are the test's view.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .attachments import AttachmentsMixin
from .errors import DiscordError, Dropped, error_response, json_reply
from .faults import FaultsMixin
from .models import Fault, RecordedRequest, UploadedFile

log = logging.getLogger(__name__)

API_PREFIX = re.compile(r"^/api(?:/v\d+)?(?=/)")
MAX_UPLOAD_REQUEST = 512 * 1024 * 1024

Handler = Callable[..., Awaitable[Any]]


class RoutesMixin(FaultsMixin, AttachmentsMixin):
    """Request recording and the routing table."""

    requests: list[RecordedRequest]  # every request, in arrival order
    unhandled: list[RecordedRequest]  # requests no route matched
    _routes: list[tuple[str, re.Pattern[str], Handler, bool]]

    def _init_routes(self) -> None:
        self.requests = []
        self.unhandled = []
        self._routes = self._build_routes()

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], Handler, bool]]:
        """(method, compiled path, bound handler, needs auth) of every mixin's ``ROUTES``."""
        table = []
        for cls in reversed(type(self).__mro__):
            for spec in vars(cls).get("ROUTES", ()):
                handler = getattr(self, spec.handler)
                table.append((spec.method, re.compile(f"^{spec.path}$"), handler, spec.auth))
        return table

    # ------------------------------------------------------------------ the test's view

    def find_requests(self, route: str) -> list[RecordedRequest]:
        """Recorded requests whose ``"METHOD /path"`` matches the fnmatch pattern ``route``."""
        probe = Fault(route, 0, 0, "")
        probe.times = None
        return [r for r in self.requests if probe.matches(r)]

    async def wait_for_request(
        self,
        route: str,
        *,
        count: int = 1,
        timeout: float = 5.0,
    ) -> RecordedRequest:
        """The ``count``-th finished request matching ``route`` (e.g. ``"POST /channels/*/messages"``)."""

        def matching() -> list[RecordedRequest]:
            return [
                r for r in self.find_requests(route) if r.status is not None or r.fault is not None
            ]

        await self.wait_until(lambda: len(matching()) >= count, timeout, f"request {route!r}")
        return matching()[count - 1]

    # ------------------------------------------------------------------ serving

    async def _handle_http(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.path
        match = API_PREFIX.match(raw_path)
        path = raw_path[match.end() :] if match else raw_path
        is_api = match is not None
        headers = {
            k: ("<redacted>" if k.lower() == "authorization" else v)
            for k, v in request.headers.items()
        }
        body, files = await self._read_body(request)
        rec = RecordedRequest(
            request.method, path, dict(request.query), headers, body, files, at=self.now()
        )
        self.requests.append(rec)
        response: web.StreamResponse
        try:
            fault = self._match_fault(rec)
            if fault is not None:
                rec.fault = fault
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.hold:
                    response = await self._held_answer(rec, request, is_api, fault)
                elif fault.drop:
                    if fault.accept:
                        with contextlib.suppress(DiscordError):
                            await self._route(rec, request, is_api)
                    raise Dropped
                else:
                    response = self._fault_response(rec, fault)
            else:
                response = await self._answer(rec, request, is_api)
            rec.status = response.status
            return response
        except Dropped:
            transport = request.transport
            if transport is not None:
                transport.abort()
            # Nothing reaches the client after abort(); aiohttp just discards this.
            return web.Response(status=500)
        finally:
            self._notify()

    async def _answer(
        self, rec: RecordedRequest, request: web.Request, is_api: bool
    ) -> web.StreamResponse:
        """Perform the request: its answer, or the error a handler raised."""
        try:
            return await self._route(rec, request, is_api)
        except DiscordError as err:
            return error_response(rec, err)

    async def _held_answer(
        self, rec: RecordedRequest, request: web.Request, is_api: bool, fault: Fault
    ) -> web.StreamResponse:
        """A hold: perform the request now (``accept``) or after the release, answer after it."""
        answer = await self._answer(rec, request, is_api) if fault.accept else None
        fault.held.append(rec)
        self._notify()
        await fault.wait_released()
        if not fault.active:
            raise Dropped  # cancelled: hang up, whatever was done stays done
        if answer is None:
            transport = request.transport
            if transport is None or transport.is_closing():
                raise Dropped  # its sender is gone: Discord never got the whole request
            answer = await self._answer(rec, request, is_api)
        return answer

    async def _route(
        self, rec: RecordedRequest, request: web.Request, is_api: bool
    ) -> web.StreamResponse:
        if not is_api:
            if rec.method == "GET" and (
                rec.path.startswith("/cdn/") or rec.path.startswith("/media/")
            ):
                return await self._cdn(rec, request)
            self.unhandled.append(rec)
            raise DiscordError(404, 0, "404: Not Found")
        for method, pattern, handler, needs_auth in self._routes:
            if method != rec.method:
                continue
            m = pattern.match(rec.path)
            if m is None:
                continue
            if needs_auth and request.headers.get("Authorization") != f"Bot {self.token}":
                raise DiscordError(401, 0, "401: Unauthorized")
            result = await handler(rec, **m.groupdict())
            if isinstance(result, web.StreamResponse):
                return result
            bucket = hashlib.sha1(f"{method} {pattern.pattern}".encode()).hexdigest()[:16]
            return json_reply(rec, result, bucket=bucket)
        self.unhandled.append(rec)
        log.warning("fake discord has no route for %s %s", rec.method, rec.path)
        raise DiscordError(404, 0, "404: Not Found")

    async def _read_body(self, request: web.Request) -> tuple[Any, list[UploadedFile]]:
        ctype = request.content_type
        files: list[UploadedFile] = []
        if ctype.startswith("multipart/"):
            body: Any = None
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not hasattr(part, "read"):
                    continue
                name = part.name or ""  # type: ignore[union-attr]
                if name == "payload_json":
                    body = json.loads(await part.text())  # type: ignore[union-attr]
                elif part.filename is not None:  # type: ignore[union-attr]
                    data = bytes(await part.read(decode=False))  # type: ignore[union-attr]
                    files.append(
                        UploadedFile(
                            name,
                            part.filename,  # type: ignore[union-attr]
                            part.headers.get("Content-Type", "application/octet-stream"),
                            data,
                        )
                    )
                else:
                    text = await part.text()  # type: ignore[union-attr]
                    if body is None:
                        body = {}
                    if isinstance(body, dict):
                        body[name] = text
            return body, files
        raw = await request.read()
        if not raw:
            return None, files
        try:
            return json.loads(raw), files
        except ValueError:
            return raw.decode(errors="replace"), files
