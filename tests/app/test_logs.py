from __future__ import annotations

import logging

import pytest

from bot.logs import REDACTED, RedactSecrets


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
