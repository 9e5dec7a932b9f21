"""The wall's running parts for one node: settings, relay, viewer sessions, PTZ clients, saved walls.

Built by ``attach_wall`` and kept on ``app.state.wall``; ``Wall.run()`` is the node service that
owns the relay and the session reaper (one task group: stopping the node stops both, sessions
first closing their peer connections, then every upstream and its reader thread).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from xueliang.api.wall.models import UpstreamInfo
from xueliang.api.wall.ptz_clients import PtzClients
from xueliang.api.wall.relay import Relay
from xueliang.api.wall.saved import SavedWalls
from xueliang.api.wall.sessions import Sessions
from xueliang.gateway.node import Node
from xueliang.gateway.wall_settings import WallSettings

log = logging.getLogger(__name__)

STREAM_KIND = "stream"  # live-feed items about a camera's upstream (state, viewers, mode)


@dataclass
class Wall:
    node: Node
    settings: WallSettings
    relay: Relay
    sessions: Sessions
    ptz: PtzClients
    saved: SavedWalls

    @classmethod
    def build(cls, node: Node) -> Wall:
        settings = node.settings.wall

        def publish(info: UpstreamInfo) -> None:
            node.live.publish(STREAM_KIND, info.camera_id, info.model_dump(mode="json"))

        relay = Relay(settings, on_change=publish)
        return cls(
            node=node,
            settings=settings,
            relay=relay,
            sessions=Sessions(relay, settings),
            ptz=PtzClients(node.settings.onvif, node.guard),
            saved=SavedWalls(node.settings.node.data_dir / "walls", settings.saved_walls_per_user),
        )

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.relay.run(), name="wall-relay")
                await self.relay.wait_running()
                group.create_task(self.sessions.run(), name="wall-sessions")
        finally:
            await self.ptz.close()
