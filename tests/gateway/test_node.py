"""The node's service supervision: a failing service is restarted, the others keep running."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from xueliang.gateway import node as node_module
from xueliang.gateway.node import open_node
from xueliang.gateway.settings_loading import load_settings


async def test_a_failing_service_is_restarted_and_the_others_keep_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(node_module, "RESTART_PAUSE_S", 0.01)
    settings = load_settings(environ={}, environment="development", node={"data_dir": str(tmp_path)})
    runs: list[str] = []
    steady = asyncio.Event()

    async def flaky() -> None:
        runs.append("flaky")
        if len(runs) < 3:
            raise RuntimeError("boom")
        await asyncio.Event().wait()

    async def healthy() -> None:
        steady.set()
        await asyncio.Event().wait()

    async with open_node(settings) as node:
        node.add_service("flaky", flaky)
        node.add_service("healthy", healthy)
        task = asyncio.create_task(node.run_services())
        async with asyncio.timeout(10):
            while len(runs) < 3:
                await asyncio.sleep(0.01)
        assert steady.is_set() and node.restarts == {"flaky": 2}
        assert "service flaky failed; restarting it" in caplog.text and "RuntimeError: boom" in caplog.text
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
