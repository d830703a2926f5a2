"""Errors whose text is meant for the member who ran a command."""

from __future__ import annotations


class UserFacingError(Exception):
    """An error whose message is shown to the member verbatim (ephemerally).

    Raise it from anywhere below a command; the command tree's error handler turns it into
    one short ephemeral message and does not log a traceback.
    """

    def __init__(self, message: str, *, code: str = "refused") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
