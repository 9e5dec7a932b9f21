"""Telling the rest of the gateway that a camera's status changed.

Three outlets, one call:

- the bus, topic ``camera.status`` (durable, capped): ``camera_id``, ``name``, ``address``,
  ``old``, ``new``, ``error``, ``at``; nothing in this release consumes it yet (it is where other
  nodes' walls and the sensor side will follow status changes; the live feed below is per process);
- the node's live feed, kind ``camera_status`` (the wall's camera tree and alarm panel);
- a camera that was working and goes offline is also an anomaly: an ``Anomaly`` with rule
  ``camera.offline`` on topic ``anomalies``, which the case side turns into an incident.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from xueliang.connectors.onvif.soap import format_camera
from xueliang.gateway.errors import StoreError
from xueliang.gateway.models import CameraRecord, CameraStatus
from xueliang.gateway.node import Node
from xueliang.inference.anomaly import Anomaly

log = logging.getLogger(__name__)

STATUS_TOPIC = "camera.status"
ANOMALY_TOPIC = "anomalies"
OFFLINE_RULE = "camera.offline"
LIVE_KIND = "camera_status"
# Statuses from which going offline is news (a camera never seen working raises no anomaly).
WORKING = frozenset({CameraStatus.ONLINE, CameraStatus.DEGRADED, CameraStatus.AUTH_FAILED, CameraStatus.UNSUPPORTED})


def address_of(record: CameraRecord) -> str:
    return format_camera(record.host, record.port)


class StatusNotifier:
    """Publishes status changes; a bus that cannot be reached is logged, never fatal to the caller."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self.published = 0
        self.failed = 0

    async def changed(self, before: CameraStatus | None, after: CameraRecord) -> None:
        """Publish if the status differs from ``before`` (None: a camera just registered)."""
        if before is after.status:
            return
        old = before or CameraStatus.PROVISIONING
        at = datetime.now(UTC)
        payload: dict[str, Any] = {
            "camera_id": after.id,
            "name": after.name,
            "address": address_of(after),
            "old": old.value,
            "new": after.status.value,
            "error": after.last_error,
            "at": at.isoformat(),
        }
        level = logging.DEBUG if before is None else logging.INFO  # registrations are reported by their caller
        log.log(level, "camera %s: status %s -> %s", after.id, old.value, after.status.value)
        self._node.live.publish(LIVE_KIND, after.id, payload)
        await self._publish(after.id, STATUS_TOPIC, payload)
        if after.status is CameraStatus.OFFLINE and old in WORKING:
            anomaly = Anomaly(
                camera_id=after.id,
                rule=OFFLINE_RULE,
                observed_at=at,
                source="camera",
                detail={
                    "name": after.name,
                    "address": address_of(after),
                    "previous": old.value,
                    "error": after.last_error,
                },
            )
            await self._publish(after.id, ANOMALY_TOPIC, anomaly.model_dump(mode="json"))

    async def _publish(self, camera_id: str, topic: str, payload: dict[str, Any]) -> None:
        try:
            await self._node.stores.bus.publish(topic, payload)
        except StoreError as exc:
            self.failed += 1
            log.warning("camera %s: status change not published on %s: %s", camera_id, topic, exc)
            return
        self.published += 1
