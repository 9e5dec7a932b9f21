"""Audit middleware: every write (POST/PUT/PATCH/DELETE) and every refusal (401/403) is recorded
with who, what (method + route template), target (path parameters), when, and the outcome."""

from __future__ import annotations

import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xueliang.gateway.errors import StoreError

log = logging.getLogger(__name__)

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status_code = 500

        async def capture(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            await self._record(scope, status_code)

    async def _record(self, scope: Scope, status_code: int) -> None:
        route = scope.get("route")
        method: str = scope["method"]
        template = getattr(route, "path", None)
        node = scope.get("state", {}).get("node")
        if template is None or node is None:
            return
        node.metrics.http_requests.labels(template, method, str(status_code)).inc()
        if status_code in (401, 403):
            node.metrics.audit_denials.labels(str(status_code)).inc()
        elif method not in WRITES:
            return
        state: dict[str, Any] = scope.get("state", {})
        principal = state.get("principal")
        actor = principal.name if principal is not None else state.get("actor_hint", "anonymous")
        params = scope.get("path_params") or {}
        target = ",".join(f"{k}={v}" for k, v in params.items())
        outcome = {401: "unauthenticated", 403: "denied"}.get(status_code, "ok" if status_code < 400 else "error")
        try:
            client = scope.get("client")
            origin = f"from {client[0]}" if client else ""  # where the request came from (the peer address)
            await node.audit(actor, f"{method} {template}", f"{outcome} {status_code}", target=target, detail=origin)
        except StoreError:
            log.exception("audit record lost for %s %s by %s", method, template, actor)
