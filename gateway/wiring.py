"""Plugs the parts' services into a node: the one place that knows every part of the gateway.

``assemble(node)`` builds camera management, the case side, the patrol (and the demo when asked)
on the node and registers their long-running services; the API (``xueliang.api.app``) mounts the
routes that reach them through the node. Nothing here knows about HTTP.
"""

from __future__ import annotations

import logging

from xueliang.gateway.cameras.runtime import CameraRuntime, attach_cameras
from xueliang.gateway.casework import CaseWork
from xueliang.gateway.leadership import lead
from xueliang.gateway.node import Node
from xueliang.gateway.patrol import Patrol
from xueliang.gateway.settings import Environment

log = logging.getLogger(__name__)


async def assemble(node: Node) -> None:
    """Build the parts in dependency order and register their services on ``node``."""
    node.cameras = cameras = await attach_cameras(node)
    try:
        await _assemble_after_cameras(node, cameras)
    except BaseException:
        await cameras.service.close()  # no service will run: close the camera side's HTTP session
        raise


async def _assemble_after_cameras(node: Node, cameras: CameraRuntime) -> None:
    demo = None
    if node.settings.demo.enabled:
        from xueliang.gateway.demo import Demo  # the simulator is loaded only for the demo

        demo = Demo(node, cameras.service)
        # The demo intake's port is bound now, so the case side is built pointing at it.
        node.settings = await demo.prepare()
    settings = node.settings
    if settings.environment == Environment.PRODUCTION and not (settings.http.public_url or settings.events.public_url):
        log.warning(
            "http.public_url is not set: case QR codes and status links will name the listen address, which "
            "people outside this machine may not reach; set http.public_url (XUELIANG_HTTP__PUBLIC_URL)"
        )
    node.cases = cases = CaseWork(node, settings.events)
    await cases.start()
    if settings.node.mode == "scaleout":  # one node at a time runs the case side (its store is local)
        node.add_service("cases", lambda: lead(node, cases.role, cases.run))
    else:
        cases.role.leading = True
        node.add_service("cases", cases.run)
    node.patrol = Patrol(node, node.cases, settings.detector, settings.sources, settings.analytics)
    await node.patrol.start()
    node.add_service("patrol", node.patrol.run)
    if demo is not None:
        demo.add_services()
