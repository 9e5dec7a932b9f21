"""The live wall: WebRTC video walls for the monitoring room, with overlays, alarms and PTZ.

Public API::

    from xueliang.api.wall import attach_wall, WallSettings
    wall = await attach_wall(node, app)      # in the lifespan, before node.run_services()

``attach_wall`` adds the routes (WHEP signalling, live-feed WebSocket, camera list, saved walls,
PTZ), mounts the page at ``/wall`` and registers the ``wall`` service
(relay + viewer-session reaper) on the node. Calling it twice for the same app is harmless.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from xueliang.api.wall import cameras, feed, layouts, ptz, whep
from xueliang.api.wall.runtime import Wall
from xueliang.gateway.node import Node
from xueliang.gateway.wall_settings import IceServer, WallSettings

STATIC_DIR = Path(__file__).resolve().parent / "static"
SERVICE_NAME = "wall"

__all__ = ["IceServer", "Wall", "WallSettings", "attach_wall"]


def _install_routes(app: FastAPI) -> None:
    for module in (whep, feed, cameras, layouts, ptz):
        app.include_router(module.router)
    app.mount("/wall", StaticFiles(directory=STATIC_DIR, html=True), name="wall")


async def attach_wall(node: Node, app: FastAPI) -> Wall:
    """Give ``node`` the live wall: routes and page on ``app``, the relay as a node service."""
    existing = getattr(app.state, "wall", None)
    if isinstance(existing, Wall) and existing.node is node:
        return existing
    if existing is None:  # else a former lifespan of this app installed them
        _install_routes(app)
    wall = Wall.build(node)
    app.state.wall = wall
    node.add_service(SERVICE_NAME, wall.run)
    return wall
