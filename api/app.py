"""The FastAPI app factory. Services are built in the lifespan from the settings and handed to
routes as typed lifespan state (``request.state.node``); nothing is created at import time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from xueliang.api import errors
from xueliang.api.audit import AuditMiddleware
from xueliang.api.routes import audit, auth, cameras, cases, health, incidents, public, users, zones
from xueliang.api.wall import attach_wall
from xueliang.gateway import __version__
from xueliang.gateway.node import Node, ensure_admin, open_node
from xueliang.gateway.settings import Settings
from xueliang.gateway.wiring import assemble

log = logging.getLogger(__name__)

Announce = Callable[[Node, tuple[str, str] | None], Awaitable[None] | None]


def create_app(settings: Settings, *, announce: Announce | None = None) -> FastAPI:
    """Build the app. ``announce`` is called once the node is open, with the bootstrap admin's
    credentials if they were just created (the CLI prints them)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Node]]:
        async with open_node(settings, exclusive=True) as node:
            await assemble(node)
            await attach_wall(node, app)  # the wall's relay service, routes and page
            created = await ensure_admin(node)
            if announce is not None:
                result = announce(node, created)
                if result is not None:
                    await result
            async with asyncio.TaskGroup() as group:
                services = group.create_task(node.run_services(), name="services")
                try:
                    yield {"node": node}
                finally:
                    services.cancel()

    app = FastAPI(
        title="Xueliang Gateway",
        version=__version__,
        summary="雪亮工程 video and sensor gateway: cameras, patrol analytics, cases, live walls",
        lifespan=lifespan,
    )
    errors.install(app)
    app.add_middleware(AuditMiddleware)
    for module in (health, auth, users, audit, cameras, zones, incidents, cases, public):
        app.include_router(module.router)

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/wall/")  # people arriving at the gateway's address see the wall

    return app
