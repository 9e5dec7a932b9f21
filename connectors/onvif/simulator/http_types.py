"""Plain records of the simulator's HTTP layer."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Protocol

REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(slots=True)
class HttpRequest:
    """One parsed HTTP request; header names are lower-case."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    local_address: str
    peer_address: str


@dataclass(slots=True)
class HttpResponse:
    """One HTTP response to serialise."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    close: bool = False
    reset: bool = False  # write nothing and reset the connection (camera went offline)

    def encode(self, keep_alive: bool) -> bytes:
        """Serialise status line, headers and body."""
        lines = [
            f"HTTP/1.1 {self.status} {REASONS.get(self.status, 'Status')}\r\n",
            "Server: xueliang-camera-simulator\r\n",
            f"Content-Type: {self.content_type}\r\n",
            f"Content-Length: {len(self.body)}\r\n",
        ]
        lines.extend(f"{name}: {value}\r\n" for name, value in self.headers)
        lines.append("Connection: keep-alive\r\n\r\n" if keep_alive and not self.close else "Connection: close\r\n\r\n")
        return "".join(lines).encode("latin-1") + self.body


# What a handler returns: a response now, a coroutine producing one later, or None: never answer
# (the "timeout" fault: the connection stays open and silent until the client gives up).
HandlerResult = HttpResponse | Awaitable[HttpResponse | None] | None


class HttpHandler(Protocol):
    """The application behind the HTTP protocol (the simulator's router)."""

    def accept(self, local_address: str) -> bool:
        """Return False to reset a new connection at once (offline camera)."""
        ...

    def handle(self, request: HttpRequest) -> HandlerResult:
        """Answer one request."""
        ...
