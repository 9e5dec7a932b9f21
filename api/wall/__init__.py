"""The live wall: WebRTC video walls for the monitoring room, with overlays, alarms and PTZ.

Public API::

    from xueliang.api.wall import attach_wall, WallSettings
    wall = await attach_wall(node, app)      # in the lifespan, before node.run_services()

``attach_wall`` adds the routes (WHEP signalling, live-feed WebSocket, camera list, saved walls,
PTZ, fallback incident actions), mounts the page at ``/wall`` and registers the ``wall`` service
(relay + viewer-session reaper) on the node. Calling it twice for the same app is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from xueliang.api.wall import cameras, feed, incidents, layouts, ptz, whep
from xueliang.api.wall.runtime import Wall, wall_settings
from xueliang.gateway.node import Node
from xueliang.gateway.wall_settings import IceServer, WallSettings

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
SERVICE_NAME = "wall"

__all__ = ["IceServer", "Wall", "WallSettings", "attach_wall", "wall_settings"]


def _route_paths(routes: Iterable[object]) -> Iterator[str]:
    """Every route path, descending into included routers (FastAPI keeps them nested)."""
    for route in routes:
        path = getattr(route, "path", None)
        if isinstance(path, str):
            yield path
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _route_paths(included.routes)


def _install_routes(app: FastAPI) -> None:
    paths = list(_route_paths(app.routes))
    if "/api/wall/whep/{camera_id}" in paths:
        return
    for module in (whep, feed, cameras, layouts, ptz):
        app.include_router(module.router)
    if incidents.has_incident_routes(paths):
        log.info("wall: incident actions are served by the events routes")
    else:
        app.include_router(incidents.router)
        log.warning("wall: no /api/incidents routes yet; serving the wall's fallback actions (publish only)")
    app.mount("/wall", StaticFiles(directory=STATIC_DIR, html=True), name="wall")


async def attach_wall(node: Node, app: FastAPI) -> Wall:
    """Give ``node`` the live wall: routes and page on ``app``, the relay as a node service."""
    existing = getattr(app.state, "wall", None)
    if isinstance(existing, Wall) and existing.node is node:
        return existing
    _install_routes(app)
    wall = Wall.build(node, wall_settings(node))
    app.state.wall = wall
    node.add_service(SERVICE_NAME, wall.run)
    return wall
