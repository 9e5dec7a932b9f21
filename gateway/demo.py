"""The demo: simulated cameras started in-process and provisioned over two districts of Bazhong,
zones on the real footage, a watched camera, the reference intake, so a newcomer running
``xueliang demo`` (``make run``) sees live cameras, boxes and alarms, and cases walking to closed.

``demo.cameras`` cameras answer on 127.1.0.1, 127.1.0.2, ... (one HTTP port), the first
:data:`RTSP_CAMERAS` also stream ``demo.video`` over RTSP. Each gets a fixed id (``demo-0001``
...) so a restart, with the simulator on new ports, moves the same cameras instead of adding new
ones. Provisioning runs in the background; the node is usable meanwhile. What the cameras look
for is in :mod:`xueliang.gateway.demo_scene`; the intake in :mod:`xueliang.gateway.demo_intake`.

Wiring (``gateway/wiring.py``)::

    demo = Demo(node, node.cameras.service)
    node.settings = await demo.prepare()   # before the case side: the forwarder's URL is the demo intake's
    ...
    demo.add_services()                    # "demo" (simulator, provisioning) and "demo-intake"
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from xueliang.connectors.onvif.simulator import CameraSimulator, SimulatorConfig
from xueliang.gateway.cameras.models import CameraSpec
from xueliang.gateway.cameras.service import CameraService
from xueliang.gateway.demo_intake import DemoIntake
from xueliang.gateway.demo_scene import (
    OPERATOR,
    ensure_operator,
    ensure_wall,
    scene_policy,
    scene_zones,
    watched_indices,
)
from xueliang.gateway.errors import GatewayError
from xueliang.gateway.models import CameraRecord, Location, PatrolPolicy
from xueliang.gateway.node import Node
from xueliang.gateway.security import write_private
from xueliang.gateway.settings import Settings
from xueliang.inference.patrol.scheduler import TargetsUnavailable
from xueliang.inference.zones import Zone

log = logging.getLogger(__name__)

RTSP_CAMERAS = 4
SIMULATOR_FILE = "demo-simulator.json"
ACTOR = "system:demo"
PROVISION_CONCURRENCY = 16


@dataclass(frozen=True, slots=True)
class Township:
    name: str
    code: str  # 9-digit township code: region code + 3 digits
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class District:
    region_code: str
    name: str
    townships: tuple[Township, ...]


DISTRICTS = (
    District(
        "511902",
        "巴州区",
        (
            Township("东城街道", "511902001", 31.859, 106.772),
            Township("西城街道", "511902002", 31.861, 106.741),
            Township("江北街道", "511902003", 31.872, 106.757),
            Township("回风街道", "511902004", 31.845, 106.760),
        ),
    ),
    District(
        "511903",
        "恩阳区",
        (
            Township("登科街道", "511903001", 31.787, 106.637),
            Township("文治街道", "511903002", 31.795, 106.649),
            Township("柳林镇", "511903101", 31.769, 106.611),
        ),
    ),
)
# (category, place name, patrol priority): key places are patrolled most often.
PLACES = (
    ("square", "广场", 1),
    ("station", "客运站", 1),
    ("school", "小学门口", 2),
    ("road", "路口", 3),
    ("community", "小区大门", 3),
    ("commercial", "商业街", 2),
    ("park", "公园", 4),
    ("hospital", "医院门口", 2),
)


def demo_spec(index: int, host: str, port: int, username: str, password: str) -> CameraSpec:
    """Camera ``index``'s description: district, township, grid and place spread evenly."""
    district = DISTRICTS[index % len(DISTRICTS)]
    township = district.townships[(index // len(DISTRICTS)) % len(district.townships)]
    category, place, priority = PLACES[index % len(PLACES)]
    grid = f"{township.code}{(index % 5) + 1:03d}"
    step = (index % 7) * 0.002
    return CameraSpec(
        id=f"demo-{index + 1:04d}",
        name=f"{township.name}{place}{index + 1:02d}",
        host=host,
        port=port,
        username=username,
        password=password,
        location=Location(
            region_code=district.region_code,
            district=district.name,
            township=township.name,
            grid_code=grid,
            address=f"巴中市{district.name}{township.name}{place}",
            lat=round(township.lat + step, 6),
            lon=round(township.lon - step, 6),
        ),
        category=category,
        policy=PatrolPolicy(priority=priority),
    )


class Demo:
    """The node services ``demo`` (simulator, provisioning, scene) and ``demo-intake``."""

    def __init__(self, node: Node, service: CameraService) -> None:
        self.node = node
        self.service = service
        self.simulator: CameraSimulator | None = None
        self.intake: DemoIntake | None = None
        self.provisioned = asyncio.Event()

    async def prepare(self) -> Settings:
        """Before the case side is built: bind the demo intake (``demo.intake``) and return the node's
        settings with the forwarder pointed at it; the settings unchanged without the intake."""
        settings = self.node.settings
        if not settings.demo.intake:
            return settings
        self.intake = await DemoIntake.prepare(self.node)
        return self.intake.with_forwarder(settings)

    def add_services(self) -> None:
        self.node.add_service("demo", self.run)
        if self.intake is not None:
            self.node.add_service("demo-intake", self.intake.run)

    async def run(self) -> None:
        await ensure_operator(self.node)
        async with contextlib.AsyncExitStack() as stack:
            simulator = self.simulator = await self._start_simulator(stack)
            log.info("demo: %d simulated cameras on HTTP port %d", len(simulator.cameras), simulator.http_port)
            await self.provision(simulator)
            await self.show(simulator)
            await asyncio.Event().wait()  # until the node stops

    async def _start_simulator(self, stack: contextlib.AsyncExitStack) -> CameraSimulator:
        """The simulator on the ports and with the password of the last run when it can (the registry
        is then right from the first moment: no visits to addresses of the last run); else on new
        ports (provisioning moves the cameras). Both kept in ``<data_dir>/demo-simulator.json``."""
        demo = self.node.settings.demo
        path = self.node.settings.node.data_dir / SIMULATOR_FILE
        kept = await asyncio.to_thread(_read_kept, path)
        config = SimulatorConfig(
            count=demo.cameras,
            video=demo.video,
            rtsp_count=min(RTSP_CAMERAS, demo.cameras),
            password=kept.password or secrets.token_urlsafe(12),
            name_prefix="DEMO",
            http_port=kept.http_port,
            rtsp_port=kept.rtsp_port,
        )
        try:
            simulator = await stack.enter_async_context(CameraSimulator(config))
        except OSError as exc:
            log.info("demo: the simulator's ports of the last run are taken (%s): new ones, the cameras move", exc)
            fresh = config.model_copy(update={"http_port": 0, "rtsp_port": 0})
            simulator = await stack.enter_async_context(CameraSimulator(fresh))
        kept = KeptSimulator(http_port=simulator.http_port, rtsp_port=simulator.rtsp_port, password=config.password)
        try:
            await asyncio.to_thread(write_private, path, kept.model_dump_json())
        except OSError as exc:
            log.warning(
                "demo: cannot keep the simulator's ports in %s (%s): the next start moves the cameras", path, exc
            )
        return simulator

    async def provision(self, simulator: CameraSimulator) -> None:
        config = simulator.config
        limit = asyncio.Semaphore(PROVISION_CONCURRENCY)
        counts: dict[str, int] = {}
        categories = [PLACES[index % len(PLACES)][0] for index in range(len(simulator.cameras))]
        watched = watched_indices(categories, config.rtsp_count, self.node.settings.demo.watch_cameras)
        seen: dict[str, int] = {}
        nth = []  # the camera's rank among the cameras of its category
        for category in categories:
            nth.append(seen.get(category, 0))
            seen[category] = nth[-1] + 1

        async def one(index: int, host: str) -> None:
            spec = demo_spec(index, host, simulator.http_port, config.username, config.password)
            zones = scene_zones(spec.category, nth[index])
            spec = spec.model_copy(update={"policy": scene_policy(spec.policy, zones, index in watched)})
            async with limit:
                try:
                    record = await self.service.add(spec, ACTOR, bounded=False)
                    if zones and not record.zones:  # a technician's own zones stay
                        await self._set_zones(record, zones)
                except GatewayError as exc:
                    log.warning("demo: camera %s not provisioned: %s", spec.id, exc)
                    counts["error"] = counts.get("error", 0) + 1
                    return
            counts[record.status.value] = counts.get(record.status.value, 0) + 1

        async with asyncio.TaskGroup() as group:
            for camera in simulator.cameras:
                group.create_task(one(camera.index, camera.address))
        self.provisioned.set()
        log.info("demo: cameras provisioned: %s", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))

    async def _set_zones(self, record: CameraRecord, zones: tuple[Zone, ...]) -> None:
        changed = record.model_copy(update={"zones": list(zones), "updated_at": datetime.now(UTC)})
        await self.node.stores.cameras.upsert(changed)

    async def show(self, simulator: CameraSimulator) -> None:
        """Put the streaming cameras on a saved wall, and let the patrol see the cameras now instead of
        at its next registry read (``analytics.scheduler.refresh_s``)."""
        streaming = [f"demo-{c.index + 1:04d}" for c in simulator.cameras[: simulator.config.rtsp_count]]
        await ensure_wall(self.node, [self.node.settings.security.bootstrap_admin, OPERATOR], streaming)
        patrol = self.node.patrol
        if patrol is None:
            return
        try:
            targets = await patrol.targets()
        except TargetsUnavailable as exc:
            log.warning("demo: the patrol picks the cameras up at its next registry read: %s", exc)
            return
        patrol.watch.update(targets)
        # Only cameras it does not know yet: a refresh that removed one could race a tick in progress.
        if all(patrol.scheduler.next_due(t.camera_id) is None for t in targets):
            await patrol.scheduler.refresh()


class KeptSimulator(BaseModel):
    """What a run keeps of its simulator for the next (``<data_dir>/demo-simulator.json``, mode 0600)."""

    model_config = ConfigDict(extra="ignore")

    http_port: int = Field(0, ge=0, le=65535, description="HTTP port of the last run; 0: any")
    rtsp_port: int = Field(0, ge=0, le=65535, description="RTSP port of the last run; 0: any")
    password: str = Field("", description="The simulated cameras' password of the last run; empty: a new one")


def _read_kept(path: Path) -> KeptSimulator:
    """What the last run kept; defaults when the file is missing or unreadable."""
    try:
        return KeptSimulator.model_validate_json(path.read_text("utf-8"))
    except FileNotFoundError:
        return KeptSimulator()
    except (OSError, ValidationError) as exc:
        log.warning("demo: %s unreadable (%s): the simulator starts on new ports", path, exc)
        return KeptSimulator()
