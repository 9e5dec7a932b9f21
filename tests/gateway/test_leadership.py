"""Singleton roles on a real Redis: one node at a time runs the work; when it stops, another takes over."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from xueliang.gateway.leadership import Role, lead
from xueliang.gateway.node import open_node
from xueliang.gateway.settings import Settings
from xueliang.gateway.settings_loading import load_settings


def scaleout_settings(tmp_path: Path, name: str, redis_url: str, prefix: str) -> Settings:
    """A scale-out node ``name`` on the test's Redis, its keys under ``prefix``."""
    return load_settings(
        environ={},
        environment="development",
        node={"mode": "scaleout", "name": name, "data_dir": str(tmp_path / name)},
        storage={"redis_url": redis_url, "redis_prefix": prefix},
        events={"codes": {"node_tag": name.upper() * 2}},
    )


async def test_one_leader_at_a_time_and_failover(tmp_path: Path, redis_url: str) -> None:
    def settings(name: str) -> Settings:
        return scaleout_settings(tmp_path, name, redis_url, "lead-test:")

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


async def test_a_node_stopped_while_its_lost_work_winds_down_stops(tmp_path: Path, redis_url: str) -> None:
    """Failed on the old code: the lease lost, ``lead`` waited for the work to end and swallowed its
    own cancellation meanwhile, then went round again; the node's stop waited for ever. The lease is
    also given up only once the work has ended."""
    settings = scaleout_settings(tmp_path, "a", redis_url, "lead-stop:")
    winding_down = asyncio.Event()
    ended = asyncio.Event()

    async def work() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            winding_down.set()
            await asyncio.shield(asyncio.sleep(0.3))  # a scheduler saving its state, say
            ended.set()

    async with open_node(settings) as a:
        role = Role("scheduler")
        task = asyncio.create_task(lead(a, role, work, renew_s=0.05, ttl_s=1.0))
        async with asyncio.timeout(5):
            while not role.leading:
                await asyncio.sleep(0.01)
        raw = a.stores.leases._c.client  # another holder takes the lease: a loses it at its renewal
        await raw.set("lead-stop:lease:scheduler", "intruder", px=60_000)
        async with asyncio.timeout(5):
            await winding_down.wait()
        task.cancel()
        async with asyncio.timeout(5):
            results = await asyncio.gather(task, return_exceptions=True)
        assert isinstance(results[0], asyncio.CancelledError) and ended.is_set()
        assert await a.stores.leases.holder("scheduler") == "intruder"  # a's release did not touch it


async def test_a_failing_work_reaches_the_supervisor_once_and_frees_the_lease(
    tmp_path: Path, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The work's failure is raised to the supervisor (which logs it); the old code also logged it
    itself, as a failure 'while stopping', so one failure read as two in the node's log."""
    settings = scaleout_settings(tmp_path, "a", redis_url, "lead-fail:")

    async def work() -> None:
        raise RuntimeError("the scheduler broke")

    async with open_node(settings) as node:
        with (
            caplog.at_level(logging.DEBUG, logger="xueliang.gateway.leadership"),
            pytest.raises(RuntimeError, match="the scheduler broke"),
        ):
            await lead(node, Role("scheduler"), work, renew_s=0.05, ttl_s=1.0)
        assert await node.stores.leases.holder("scheduler") is None
    assert not [r for r in caplog.records if "the scheduler broke" in r.getMessage()]
