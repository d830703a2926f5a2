from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from bot.logs import REDACTED, RedactSecrets, setup_logging


def test_secrets_are_redacted_from_messages_and_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("test.redact")
    secret = "sk-live-0123456789"
    for handler in (caplog.handler,):
        handler.addFilter(RedactSecrets([secret]))
    try:
        raise ValueError(f"bad header Bearer {secret}")
    except ValueError:
        logger.exception("call failed with key %s", secret)
    text = caplog.text
    assert secret not in text
    assert REDACTED in text
    assert "call failed with key" in text


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    discord_level = logging.getLogger("discord").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("discord").setLevel(discord_level)


def test_every_line_names_the_process_whatever_logged_it(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    secret = "sk-live-0123456789"
    setup_logging("INFO", [secret], "shard-0-2")
    logging.getLogger("bot.core.poller").info("poller started")
    logging.getLogger("discord.gateway").warning("shard ID 2 has connected (%s)", secret)
    try:
        raise ValueError(secret)
    except ValueError:
        logging.getLogger("aiohttp.client").exception("failed")
    err = capsys.readouterr().err
    assert secret not in err
    lines = [line for line in err.splitlines() if line.startswith("20")]  # not the traceback
    assert len(lines) == 3, lines
    assert all(" [shard-0-2] " in line for line in lines)
    assert lines[0].endswith("[shard-0-2] INFO    bot.core.poller: poller started")
    assert f"connected ({REDACTED})" in lines[1]
