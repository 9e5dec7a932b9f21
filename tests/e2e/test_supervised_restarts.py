"""The node's supervisor restarts a failed service, and it really runs again. The patrol: a fresh
scheduler, workers and watch manager (each runs once), the same detector still started. The case
side: a new case service on the same store, anomalies becoming incidents again. (In-process: the
failure is injected into the running node; the rest of the e2e suite runs the gateway as a process.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

from xueliang.events.service import ServiceState
from xueliang.gateway.node import Node, open_node
from xueliang.gateway.settings_loading import load_settings
from xueliang.gateway.wiring import assemble
from xueliang.inference.anomaly import Anomaly
from xueliang.inference.detector import Detector, DetectorState
from xueliang.inference.patrol.scheduler import SchedulerState

from .conftest import MODEL, wait_for


async def test_a_failed_patrol_is_restarted_and_runs_again_with_its_detector(tmp_path: Path) -> None:
    settings = load_settings(
        environ={},
        environment="development",
        node={"data_dir": str(tmp_path)},
        detector={"model_path": str(MODEL)},
        cameras={"sweep": {"enabled": False}},
    )
    async with open_node(settings) as node:
        await assemble(node)
        patrol = node.patrol
        assert patrol is not None and isinstance(patrol.detector, Detector)
        first = patrol.scheduler

        async def broken_tick() -> int:
            raise RuntimeError("injected: the scheduler fails once")

        first.tick = broken_tick  # type: ignore[method-assign]
        services = asyncio.create_task(node.run_services())
        try:

            async def restarted_and_running() -> bool:
                return node.restarts.get("patrol", 0) >= 1 and patrol.scheduler.state is SchedulerState.RUNNING

            await wait_for(restarted_and_running, 20, "the patrol restarted with a running scheduler")
            await asyncio.sleep(1.5)  # a broken restart would fail again within the supervisor's first pause
            assert node.restarts.get("patrol") == 1, node.restarts
            assert patrol.scheduler is not first and patrol.scheduler.state is SchedulerState.RUNNING
            assert isinstance(patrol.detector, Detector) and patrol.detector.state is DetectorState.RUNNING
        finally:
            services.cancel()
            await asyncio.gather(services, return_exceptions=True)
        assert isinstance(patrol.detector, Detector) and patrol.detector.state is DetectorState.STOPPED


async def test_a_failed_case_service_is_restarted_on_its_store_and_takes_anomalies_again(tmp_path: Path) -> None:
    settings = load_settings(
        environ={},
        environment="development",
        node={"data_dir": str(tmp_path)},
        detector={"model_path": str(tmp_path / "no-model.onnx")},  # quality checks only: this is about cases
        cameras={"sweep": {"enabled": False}},
    )
    async with open_node(settings) as node:
        await assemble(node)
        work = node.cases
        assert work is not None
        first = work.service

        async def broken_handle(*_: object) -> list[object]:
            raise RuntimeError("injected: the case service fails on an anomaly")

        first.handle = broken_handle  # type: ignore[method-assign]
        services = asyncio.create_task(node.run_services())
        try:
            await work.publish(Anomaly(camera_id="cam-1", rule="sensor.smoke", value=1))

            async def restarted_and_running() -> bool:
                return node.restarts.get("cases", 0) >= 1 and work.service.state is ServiceState.RUNNING

            await wait_for(restarted_and_running, 20, "the case service restarted and running")
            assert work.service is not first and first.state is ServiceState.STOPPED
            await work.publish(Anomaly(camera_id="cam-2", rule="sensor.smoke", value=1))
            await wait_for(lambda: _incident_at(node, "cam-2"), 20, "an incident from an anomaly after the restart")
            assert node.restarts.get("cases") == 1, node.restarts
        finally:
            services.cancel()
            await asyncio.gather(services, return_exceptions=True)


async def _incident_at(node: Node, camera_id: str) -> bool:
    assert node.cases is not None
    return any(i.camera_id == camera_id for i in node.cases.service.aggregator.live())
