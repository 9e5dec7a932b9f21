"""Pydantic's validation messages as people read them.

Pydantic puts the kind of a custom validator's failure before its message ("Value error, the
polygon crosses itself"); a technician reading an import report, a config check or an API answer
needs only the message.
"""

from __future__ import annotations

_PREFIXES = ("Value error, ", "Assertion failed, ")


def readable(message: str) -> str:
    """``message`` without pydantic's "Value error, " (or "Assertion failed, ") in front."""
    for prefix in _PREFIXES:
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message
