"""Singleton roles on a real Redis: one node at a time runs the work; when it stops, another takes over."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from xueliang.gateway.leadership import Role, lead
from xueliang.gateway.node import open_node
from xueliang.gateway.settings import Settings
from xueliang.gateway.settings_loading import load_settings


async def test_one_leader_at_a_time_and_failover(tmp_path: Path, redis_url: str) -> None:
    def settings(name: str) -> Settings:
        return load_settings(
            environ={},
            environment="development",
            node={"mode": "scaleout", "name": name, "data_dir": str(tmp_path / name)},
            storage={"redis_url": redis_url, "redis_prefix": "lead-test:"},
            events={"codes": {"node_tag": name.upper() * 2}},
        )

    running: list[str] = []

    def work_of(name: str) -> Callable[[], Coroutine[Any, Any, None]]:
        async def work() -> None:
            running.append(name)
            try:
                await asyncio.Event().wait()
            finally:
                running.remove(name)

        return work

    async with open_node(settings("a")) as a, open_node(settings("b")) as b:
        role_a, role_b = Role("scheduler"), Role("scheduler")
        task_a = asyncio.create_task(lead(a, role_a, work_of("a"), renew_s=0.05, ttl_s=1.0))
        async with asyncio.timeout(5):
            while running != ["a"]:
                await asyncio.sleep(0.01)
        task_b = asyncio.create_task(lead(b, role_b, work_of("b"), renew_s=0.05, ttl_s=1.0))
        for _ in range(20):  # b keeps trying while a holds the lease, and never runs
            await asyncio.sleep(0.02)
            assert running == ["a"] and role_a.leading and not role_b.leading
        task_a.cancel()
        await asyncio.gather(task_a, return_exceptions=True)
        async with asyncio.timeout(5):
            while running != ["b"]:
                await asyncio.sleep(0.01)
        assert role_b.leading and not role_a.leading
        assert await b.stores.leases.holder("scheduler") == "b"
        task_b.cancel()
        await asyncio.gather(task_b, return_exceptions=True)
        assert running == [] and await a.stores.leases.holder("scheduler") is None
