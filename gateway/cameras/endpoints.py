"""Where each camera's media service answers, learned from its probe, for the health sweep's
fast path (one ``GetStreamUri`` straight to the media service, no ``GetServices`` first).

Kept in memory, one entry per camera: the registry record has no field for service addresses,
so after a restart the first sweep learns them again (through the ONVIF client) as it goes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from xueliang.connectors.onvif import ProbeResult
from xueliang.connectors.onvif import ns as onvif_ns


@dataclass(frozen=True, slots=True)
class MediaEndpoint:
    xaddr: str
    version: Literal[1, 2]


def media_endpoint(services: dict[str, str], version: int | None = None) -> MediaEndpoint | None:
    """The media service the probe would use: Media2 when offered, else Media1."""
    if version != 1 and onvif_ns.MEDIA2 in services:
        return MediaEndpoint(services[onvif_ns.MEDIA2], 2)
    if onvif_ns.MEDIA in services:
        return MediaEndpoint(services[onvif_ns.MEDIA], 1)
    return None


class EndpointCache:
    """camera id -> its media endpoint; ``forget`` on delete or a changed address."""

    def __init__(self) -> None:
        self._media: dict[str, MediaEndpoint] = {}

    def learn(self, camera_id: str, result: ProbeResult) -> None:
        endpoint = media_endpoint(result.services, result.media_version)
        if endpoint is None:
            self._media.pop(camera_id, None)
        else:
            self._media[camera_id] = endpoint

    def set(self, camera_id: str, endpoint: MediaEndpoint) -> None:
        self._media[camera_id] = endpoint

    def media(self, camera_id: str) -> MediaEndpoint | None:
        return self._media.get(camera_id)

    def forget(self, camera_id: str) -> None:
        self._media.pop(camera_id, None)

    def __len__(self) -> int:
        return len(self._media)
