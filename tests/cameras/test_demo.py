"""The demo: simulated cameras started in-process and provisioned over two districts; a restart
(new simulator ports) moves the same cameras instead of adding new ones."""

from __future__ import annotations

import asyncio
from pathlib import Path

from xueliang.gateway.cameras.service import CameraService
from xueliang.gateway.demo import DISTRICTS, Demo
from xueliang.gateway.models import CameraQuery, CameraStatus
from xueliang.gateway.node import open_node

from .conftest import VIDEO, node_settings


async def run_demo(tmp_path: Path, cameras: int) -> list[tuple[str, int]]:
    settings = node_settings(tmp_path, demo={"enabled": True, "cameras": cameras, "video": str(VIDEO)})
    async with open_node(settings) as node, CameraService(node) as service:
        demo = Demo(node, service)
        task = asyncio.create_task(demo.run())
        try:
            async with asyncio.timeout(60):
                await demo.provisioned.wait()
            records = await service.list(CameraQuery())
            assert demo.simulator is not None
            assert all(r.port == demo.simulator.http_port for r in records)
            assert [r.id for r in records] == [f"demo-{i:04d}" for i in range(1, cameras + 1)]
            assert {r.status for r in records} == {CameraStatus.ONLINE}
            assert {r.location.region_code for r in records} == {d.region_code for d in DISTRICTS}
            assert {r.location.district for r in records} == {"巴州区", "恩阳区"}
            assert len({r.location.township for r in records}) >= 4 and len({r.category for r in records}) >= 4
            assert all(r.location.grid_code.startswith(r.location.region_code) for r in records)
            assert all(r.location.lat and r.location.lon for r in records)
            streaming = [r for r in records if r.profiles and r.profiles[0].stream_uri]
            assert len(streaming) == cameras
            return [(r.host, r.port) for r in records]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_demo_populates_two_districts_and_a_restart_moves_the_same_cameras(tmp_path: Path) -> None:
    first = await run_demo(tmp_path, 10)
    second = await run_demo(tmp_path, 10)
    assert [h for h, _ in first] == [h for h, _ in second]  # the same 10 cameras, not 20
