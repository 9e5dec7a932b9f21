"""The gateway's own exception tree, drawn once.

::

    GatewayError                      base of everything the gateway raises on purpose
    ├── ConfigError                   a settings file or table is wrong (carries every problem)
    ├── StoreError                    a store, queue, bus or outbox operation failed
    │   ├── NotFound                  the record asked for does not exist
    │   ├── Conflict                  the record exists already / was changed concurrently
    │   ├── StoreUnavailable          the backing service (SQLite file, Redis) cannot be reached
    │   └── BusFull                   a bus topic's unconsumed backlog is full (stores.base; retry later)
    ├── AuthError                     who you are could not be established (HTTP 401)
    ├── PermissionDenied              who you are may not do this (HTTP 403)
    └── SecretUnreadable              a stored secret cannot be decrypted (key changed; HTTP 409)

Each part keeps its own tree for its own domain (``xueliang.connectors.onvif.errors``,
``xueliang.inference.errors``, ``xueliang.events.errors``); the API maps them to HTTP answers.
Every message says what failed, which one, and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass


class GatewayError(Exception):
    """Base class of the gateway's deliberate errors."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in a configuration: where (dotted key path), what, and how to fix it."""

    key: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.key}: {self.message}"
        return f"{text} (fix: {self.hint})" if self.hint else text


class ConfigError(GatewayError):
    """A configuration is invalid; ``problems`` lists every problem found, not just the first."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


class StoreError(GatewayError):
    """A store, queue, bus or outbox operation failed."""


class NotFound(StoreError):
    """The record asked for does not exist."""


class Conflict(StoreError):
    """The record exists already, or was changed concurrently."""


class StoreUnavailable(StoreError):
    """The backing service cannot be reached (Redis down, SQLite file unwritable)."""


class AuthError(GatewayError):
    """Credentials are missing, wrong or expired."""


class PermissionDenied(GatewayError):
    """The caller is known but its role does not allow the action."""


class SecretUnreadable(GatewayError):
    """A stored secret (a camera password) cannot be decrypted with the configured key."""
