"""One small HTTP server inside the bot's event loop, for what the bot serves (webhooks,
metrics): `async with Listener(app, host, port, settings_named="…")`. Started and stopped
with the bot like every other resource: no thread, nothing left listening after a stop. An
address that cannot be listened on stops the bot with one line naming its settings."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from aiohttp import web

from bot.settings import ConfigurationError


class Listener:
    def __init__(
        self, app: web.Application, host: str, port: int, *, settings_named: str, path: str = ""
    ) -> None:
        self.host = host
        self.port = port
        self.path = path  # what `url` names: where the app's routes start
        self._settings_named = settings_named
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.path}"

    async def __aenter__(self) -> Self:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as error:
            await self._runner.cleanup()
            raise ConfigurationError(
                f"{self._settings_named}: cannot listen on {self.host}:{self.port} "
                f"({error.strerror or error})"
            ) from None
        if self.port == 0:  # the system chose one (tests)
            self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._runner.cleanup()
