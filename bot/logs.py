"""Logging set-up: one line per event, each naming the process that wrote it, and no secret
ever written out."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

REDACTED = "[redacted]"


class RedactSecrets(logging.Filter):
    """Replaces every known secret in a record's rendered text, whatever logged it.

    Our own code never logs a secret; this guards against a library echoing a header or a
    URL with a key in it.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [secret for secret in secrets if len(secret) >= 6]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        text = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        cleaned = text
        for secret in self.secrets:
            cleaned = cleaned.replace(secret, REDACTED)
            if record.exc_text:
                record.exc_text = record.exc_text.replace(secret, REDACTED)
        if cleaned != text:
            record.msg, record.args = cleaned, None
        return True


class ProcessName(logging.Filter):
    """Sets `record.process_name`, so every line says which process wrote it (several bot
    processes usually log to one place)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.process_name = name

    def filter(self, record: logging.LogRecord) -> bool:
        record.process_name = self.process_name
        return True


LINE_FORMAT = "%(asctime)s [%(process_name)s] %(levelname)-7s %(name)s: %(message)s"


def setup_logging(level: str, secrets: Iterable[str] = (), process_name: str = "bot") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LINE_FORMAT, "%Y-%m-%d %H:%M:%S"))
    # On the handler, not on a logger: records of every logger (discord.py's, aiohttp's)
    # pass through it.
    handler.addFilter(ProcessName(process_name))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # discord.py's own gateway chatter is useful at INFO only when debugging.
    logging.getLogger("discord").setLevel(max(logging.getLevelName(level), logging.INFO))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
