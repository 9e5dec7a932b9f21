"""Camera management on a running node: the service, the health sweep and the API's import jobs,
built once by :func:`attach_cameras` and run as the node service ``cameras``."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from xueliang.connectors.onvif import warm_up
from xueliang.gateway.cameras.jobs import ImportJobs
from xueliang.gateway.cameras.service import CameraService
from xueliang.gateway.cameras.sweep import HealthSweep
from xueliang.gateway.node import Node

log = logging.getLogger(__name__)


@dataclass
class CameraRuntime:
    service: CameraService
    sweep: HealthSweep
    imports: ImportJobs

    async def run(self) -> None:
        """Import jobs and (when enabled) the sweep, until the node stops; then the HTTP session closes.

        A failure propagates to the node's supervisor, which runs this again: the session stays
        open for that; only the node stopping (cancellation) closes it."""
        try:
            await warm_up()  # parse the WSDLs once now, not in the first camera's probe
            async with asyncio.TaskGroup() as group:
                group.create_task(self.imports.run(), name="camera-imports")
                if self.service.settings.sweep.enabled:
                    group.create_task(self.sweep.run(), name="camera-sweep")
        except asyncio.CancelledError:
            await self.service.close()
            raise

    async def sample(self) -> dict[str, float]:
        """Counters for ``xueliang_component_value{component="cameras"}``."""
        return {
            "status_published": self.service.notifier.published,
            "status_publish_failed": self.service.notifier.failed,
            "media_endpoints_known": len(self.service.endpoints),
            "import_jobs_refused": self.imports.refused,
            "sweep_rounds": self.sweep.rounds,
        }


async def attach_cameras(node: Node) -> CameraRuntime:
    """Build camera management for ``node`` and register its service; the caller mounts the routes."""
    service = CameraService(node)
    await service.open()
    runtime = CameraRuntime(
        service=service,
        sweep=HealthSweep(node, service),
        imports=ImportJobs(service, node.settings.node.data_dir / "imports"),
    )
    node.add_service("cameras", runtime.run)
    node.metrics.add_sampler("cameras", runtime.sample)
    return runtime
