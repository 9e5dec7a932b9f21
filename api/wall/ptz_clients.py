"""ONVIF clients of the cameras operators steer: one per camera (least recently used first out,
``MAX_CLIENTS``) on one shared HTTP session, so a held PTZ button does not pay for GetServices on
every repeat."""

from __future__ import annotations

from collections import OrderedDict

import aiohttp

from xueliang.connectors.onvif import OnvifClient, OnvifSettings, create_session
from xueliang.connectors.onvif.policy import AddressPolicy
from xueliang.gateway.models import CameraRecord

MAX_CLIENTS = 256


class PtzClients:
    """ONVIF clients of the cameras operators steer, on one shared HTTP session."""

    def __init__(self, settings: OnvifSettings, policy: AddressPolicy) -> None:
        """``policy``: the node's guard; every connection is checked after DNS (the PTZ XAddr the
        camera gives, a redirect, a name resolving outside the allowed networks)."""
        self.settings = settings
        self.policy = policy
        self._session: aiohttp.ClientSession | None = None
        self._clients: OrderedDict[str, tuple[tuple[object, ...], OnvifClient]] = OrderedDict()

    def client(self, camera: CameraRecord, password: str) -> OnvifClient:
        key = (camera.host, camera.port, camera.username, password)
        cached = self._clients.get(camera.id)
        if cached is not None and cached[0] == key:
            self._clients.move_to_end(camera.id)
            return cached[1]
        if self._session is None:
            self._session = create_session(self.settings, policy=self.policy)
        client = OnvifClient(
            camera.host, camera.port, camera.username, password, session=self._session, settings=self.settings
        )
        self._clients[camera.id] = (key, client)
        while len(self._clients) > MAX_CLIENTS:
            self._clients.popitem(last=False)
        return client

    async def close(self) -> None:
        self._clients.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None
