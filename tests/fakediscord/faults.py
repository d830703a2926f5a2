"""Injected failures: ``fail`` answers matching requests with an error, ``drop_connection``
hangs up on them, ``hold`` keeps them waiting (before or after they take effect) until released.

A fault matches ``"METHOD /path"`` by fnmatch (``*`` also crosses ``/``), ``times`` times
(``None``: until ``clear_faults``), optionally only ``when`` a predicate holds. A status or a
Discord code is enough (the other is derived: 413→40005, 404→10003, 403→50013, 50007→403 …);
a 429 carries ``retry_after`` and the headers discord.py needs to retry rather than give up.
routes.py consults ``_match_fault`` before it routes a request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .core import FakeCore
from .errors import DiscordError, error_response, json_response, ratelimit_headers
from .models import DEFAULT_CODE_FOR_STATUS, ERROR_CODES, Fault, RecordedRequest


class FaultsMixin(FakeCore):
    """The active faults, and the responses they produce."""

    faults: list[Fault]

    def _init_faults(self) -> None:
        self.faults = []

    def fail(
        self,
        route: str,
        status: int | None = None,
        *,
        code: int | None = None,
        message: str | None = None,
        times: int | None = 1,
        retry_after: float = 0.01,
        is_global: bool = False,
        delay: float = 0.0,
        when: Callable[[RecordedRequest], bool] | None = None,
    ) -> Fault:
        """Answer matching requests with an error, ``times`` times (``None``: until cancelled).

        ``route`` is ``"METHOD /path-pattern"`` over the API path without ``/api/v10`` (``*`` spans
        ``/``), e.g. ``"POST /channels/*/messages"``. Give ``status`` or a Discord ``code`` (the other
        is derived: 413→40005, 404→10003, 403→50013, 50007→403, …). For 429 the body carries
        ``retry_after`` and the headers Discord sends (incl. ``Via``, without which discord.py
        takes a 429 for a Cloudflare ban and does not retry).

        discord.py retries 500/502/504/524 itself up to 5 times sleeping 1, 3, 5, 7 s; a 503
        is raised at once (``DiscordServerError``) — use ``times=1`` with 500, or 503, to stay fast.
        """
        if status is None and code is None:
            raise ValueError("give a status or a code")
        if status is None:
            assert code is not None
            status = ERROR_CODES.get(code, (400, ""))[0]
        if code is None:
            code = (
                0 if status in (429,) or status >= 500 else DEFAULT_CODE_FOR_STATUS.get(status, 0)
            )
        if message is None:
            if status == 429:
                message = "You are being rate limited."
            elif status >= 500 and code == 0:
                message = f"{status}: {'Internal Server Error' if status == 500 else 'Service Unavailable'}"
            else:
                message = ERROR_CODES.get(code, (status, f"{status}: error"))[1]
        fault = Fault(
            route,
            status,
            code,
            message,
            times=times,
            retry_after=retry_after,
            is_global=is_global,
            delay=delay,
            when=when,
        )
        self.faults.append(fault)
        return fault

    def drop_connection(
        self,
        route: str,
        *,
        times: int | None = 1,
        accept: bool = True,
        when: Callable[[RecordedRequest], bool] | None = None,
    ) -> Fault:
        """Hang up instead of answering matching requests. With ``accept=True`` the request takes
        effect first (the message is posted) — a crash during an upload that Discord received."""
        fault = Fault(
            route, 0, 0, "connection dropped", times=times, drop=True, accept=accept, when=when
        )
        self.faults.append(fault)
        return fault

    def hold(
        self,
        route: str,
        *,
        accept: bool = True,
        times: int | None = 1,
        when: Callable[[RecordedRequest], bool] | None = None,
    ) -> Fault:
        """Keep matching requests waiting for their answer until ``fault.release()``.

        With ``accept=True`` the request takes effect first (the message is stored) and only
        its answer waits: a client killed meanwhile never learns that its post landed. With
        ``accept=False`` nothing happens until the release: a client killed meanwhile lost its
        request (released after its client has gone, it is dropped unperformed).
        ``fault.held`` lists the requests kept so far (``wait_until(lambda: fault.held)``);
        ``fault.cancel()`` (or ``clear_faults``, or closing the fake) hangs up on them.
        """
        fault = Fault(route, 0, 0, "held", times=times, accept=accept, hold=True, when=when)
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        for fault in self.faults:
            fault.cancel()
        self.faults.clear()

    def _match_fault(self, rec: RecordedRequest) -> Fault | None:
        for fault in self.faults:
            if fault.matches(rec):
                fault.hits += 1
                return fault
        return None

    def _fault_response(self, rec: RecordedRequest, fault: Fault) -> web.Response:
        if fault.status == 429:
            body: dict[str, Any] = {
                "message": fault.message,
                "retry_after": fault.retry_after,
                "global": fault.is_global,
                "code": fault.code,
            }
            headers = ratelimit_headers(
                {
                    "Retry-After": str(max(1, math.ceil(fault.retry_after))),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": f"{time.time() + fault.retry_after:.3f}",
                    "X-RateLimit-Reset-After": f"{fault.retry_after:.3f}",
                    "X-RateLimit-Scope": "global" if fault.is_global else "user",
                }
            )
            if fault.is_global:
                headers["X-RateLimit-Global"] = "true"
            rec.response = body
            return json_response(body, 429, headers)
        response = error_response(rec, DiscordError(fault.status, fault.code, fault.message))
        if fault.status >= 500 and fault.retry_after >= 1:
            # What Discord's edge sends with a 503 now and then: when to come back.
            response.headers["Retry-After"] = str(math.ceil(fault.retry_after))
        return response
