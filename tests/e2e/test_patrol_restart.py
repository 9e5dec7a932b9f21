"""The node's supervisor restarts a failed patrol, and the patrol really runs again: a fresh scheduler,
workers and watch manager (each runs once), the same detector still started. (In-process: the
failure is injected into the running node; the rest of the e2e suite runs the gateway as a process.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

from xueliang.gateway.node import open_node
from xueliang.gateway.settings import load_settings
from xueliang.gateway.wiring import assemble
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
