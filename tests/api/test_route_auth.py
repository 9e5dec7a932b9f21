"""Every route of the running app (``app.routes``, the live wall's and those left out of the OpenAPI
schema included) refuses a caller without valid credentials, and a machine client's key gets 403 on
every route but its own: a route added later without its role dependency fails here."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts
from starlette.routing import Mount, Route

from tests.api.conftest import RunningGateway, dev_settings, start_gateway
from xueliang.gateway.models import Role
from xueliang.gateway.security import Principal, Tokens, resolve_secrets

# Open on purpose: health, login, the public case page (QR target), the home redirect, the wall's page
# (static files; its data comes from protected routes) and FastAPI's own docs.
OPEN = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("POST", "/api/auth/login"),
    ("GET", "/c/{code}"),
    ("GET", "/c/{code}.json"),
    ("GET", "/"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
}
OPEN_MOUNTS = {"/wall"}
INTAKE_MAY = {("GET", "/api/auth/me"), ("POST", "/api/intake/callback")}  # the intake client's own


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, RunningGateway]]:
    server, task, running = await start_gateway(dev_settings(tmp_path, events={"codes": {"node_tag": "T01"}}))
    try:
        app = server.config.app
        assert isinstance(app, FastAPI)
        yield app, running
    finally:
        server.should_exit = True
        await task


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


def http_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every HTTP route, routers' prefixes applied; refuses kinds it cannot check."""
    found: list[tuple[str, str]] = []
    for context in iter_route_contexts(app.routes):
        route, path = context.original_route, context.path
        if isinstance(route, APIRoute | Route):
            found += [(method, str(path)) for method in sorted(context.methods or ()) if method != "HEAD"]
        elif isinstance(route, Mount):
            assert path in OPEN_MOUNTS, f"mount {path}: is it meant to be open?"
        else:
            assert isinstance(route, APIWebSocketRoute), f"unknown kind of route {route!r}"
    return found


def websocket_paths(app: FastAPI) -> list[str]:
    contexts = iter_route_contexts(app.routes)
    return [str(c.path) for c in contexts if isinstance(c.original_route, APIWebSocketRoute)]


async def test_every_route_refuses_missing_garbled_and_expired_credentials_and_the_wrong_role(
    served: tuple[FastAPI, RunningGateway],
) -> None:
    app, gw = served
    routes = http_routes(app)
    assert set(routes) >= OPEN, f"OPEN lists routes that no longer exist: {OPEN - set(routes)}"
    protected = [r for r in routes if r not in OPEN]
    assert len(protected) > 30  # the wall's and the API's; a walk that finds nothing proves nothing
    expired = Tokens(resolve_secrets(gw.settings).token_secret, -60).issue(Principal(gw.admin[0], Role.ADMIN))[0]
    admin_token = await gw.login(*gw.admin)
    async with gw.client(admin_token) as admin:
        created = await admin.post("/api/api-keys", json={"name": "intake", "role": "intake"})
        intake_key = created.json()["key"]
    credentials: dict[str, dict[str, str]] = {
        "none": {},
        "garbled token": {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2ln"},
        "not bearer": {"Authorization": f"Basic {admin_token}"},
        "expired token": {"Authorization": f"Bearer {expired}"},
        "unknown key": {"X-API-Key": "xlk_deadbeef_nosuchsecret"},
    }
    async with gw.client() as client:
        for method, path in protected:
            for name, headers in credentials.items():
                response = await client.request(method, concrete(path), json={}, headers=headers)
                assert response.status_code == 401, (method, path, name, response.text)
                assert response.headers["www-authenticate"] == "Bearer"
            if (method, path) not in INTAKE_MAY:
                response = await client.request(method, concrete(path), json={}, headers={"X-API-Key": intake_key})
                assert response.status_code == 403, (method, path, "intake key", response.text)
                assert "needs" in response.json()["detail"]


async def test_every_websocket_route_refuses_bad_credentials(served: tuple[FastAPI, RunningGateway]) -> None:
    app, gw = served
    sockets = websocket_paths(app)
    assert sockets == ["/api/wall/ws"]
    async with gw.client(await gw.login(*gw.admin)) as admin:
        intake_key = (await admin.post("/api/api-keys", json={"name": "i", "role": "intake"})).json()["key"]
    async with aiohttp.ClientSession() as session:
        for path in sockets:
            for token, refused in (("garbled", (401, 403)), (intake_key, (403,))):
                with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                    async with session.ws_connect(gw.url + path, params={"token": token}):
                        pass
                assert caught.value.status in refused, (path, token[:8])
