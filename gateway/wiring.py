"""Plugs the parts' services into a node: the one place that knows every part.

Each capability (cameras, patrol, cases, wall) adds its services and routes here.
"""

from __future__ import annotations

from fastapi import FastAPI

from xueliang.api.routes import cameras as camera_routes
from xueliang.api.routes import cases as case_routes
from xueliang.api.routes import incidents as incident_routes
from xueliang.api.routes import public as public_routes
from xueliang.api.routes import zones as zone_routes
from xueliang.gateway.cameras.runtime import attach_cameras
from xueliang.gateway.casework import CaseWork
from xueliang.gateway.node import Node
from xueliang.gateway.patrol import Patrol


async def assemble(node: Node, app: FastAPI) -> None:
    """Register the node's background services and the parts' API routes."""
    cameras = app.state.cameras = await attach_cameras(node)
    app.include_router(camera_routes.router)
    node.cases = CaseWork(node, node.settings.events)
    await node.cases.start()
    node.add_service("cases", node.cases.run)
    for module in (incident_routes, case_routes, public_routes, zone_routes):
        app.include_router(module.router)
    settings = node.settings
    patrol = app.state.patrol = Patrol(node, node.cases, settings.detector, settings.sources, settings.analytics)
    await patrol.start()
    node.add_service("patrol", patrol.run)
    if node.settings.demo.enabled:
        from xueliang.gateway.demo import Demo  # the simulator is loaded only for the demo

        app.state.demo = Demo(node, cameras.service)
        node.add_service("demo", app.state.demo.run)
