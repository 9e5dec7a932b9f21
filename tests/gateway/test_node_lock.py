"""One serving node per data directory: ``open_node(settings, exclusive=True)`` holds
``<data_dir>/node.lock`` before anything in the directory is touched, so a second gateway pointed at
the same ``node.data_dir`` by mistake is refused, naming the holder, instead of writing the same
SQLite files. Real second processes; the kernel drops the lock of a node that dies."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from xueliang.gateway.errors import ConfigError
from xueliang.gateway.node import ensure_admin, open_node
from xueliang.gateway.settings import Settings
from xueliang.gateway.settings_loading import load_settings

pytestmark = pytest.mark.timeout(60)

# A second gateway process on argv[1]; opening its stores is recorded, so the test sees whether the
# refusal came before them. "hold" keeps the node open until stdin closes.
SECOND_NODE = """
import asyncio, sys
from xueliang.gateway import node as node_module
from xueliang.gateway.errors import ConfigError
from xueliang.gateway.settings_loading import load_settings

real_open_stores = node_module.open_stores

async def recorded_open_stores(settings):
    print("STORES OPENED", flush=True)
    return await real_open_stores(settings)

node_module.open_stores = recorded_open_stores

async def main() -> None:
    settings = load_settings(environ={}, environment="development", node={"data_dir": sys.argv[1], "name": "second"})
    try:
        async with node_module.open_node(settings, exclusive=True) as node:
            print("OPENED", node.name, flush=True)
            if sys.argv[2:] == ["hold"]:
                await asyncio.to_thread(sys.stdin.read)
    except ConfigError as exc:
        print("REFUSED", exc, flush=True)

asyncio.run(main())
"""


def settings_of(data_dir: Path, **node: object) -> Settings:
    return load_settings(environ={}, environment="development", node={"data_dir": str(data_dir), **node})


async def second_node(data_dir: Path) -> str:
    """Another gateway process opening a serving node on ``data_dir``; its output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SECOND_NODE, str(data_dir), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 50)
    assert process.returncode == 0, err.decode()
    return out.decode().strip()


async def test_a_second_gateway_on_the_same_data_dir_is_refused_before_it_opens_its_stores(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    async with open_node(settings_of(data_dir), exclusive=True) as first:
        answer = await second_node(data_dir)
        assert answer.startswith("REFUSED"), answer
        assert "STORES OPENED" not in answer  # refused before it touched the gateway's SQLite file
        assert f"node.data_dir: {data_dir} is in use by another gateway node (pid {os.getpid()} on " in answer
        assert os.uname().nodename in answer and str(data_dir / "node.lock") in answer
        assert "stop the other gateway, or give this one its own node.data_dir" in answer
        assert (data_dir / "node.lock").read_text() == f"pid {os.getpid()} on {os.uname().nodename}"

        with pytest.raises(ConfigError, match=r"is in use by another gateway node"):  # flock: per open file
            async with open_node(settings_of(data_dir), exclusive=True):
                pass
        async with open_node(settings_of(data_dir)) as command:  # a CLI command beside the serving node
            assert await ensure_admin(command) is not None
        assert [user.username for user in await first.stores.users.list_users()] == ["admin"]
    assert await second_node(data_dir) == "STORES OPENED\nOPENED second"  # the first has closed: free again


async def test_a_node_that_dies_holding_the_data_dir_leaves_no_stale_lock(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SECOND_NODE, str(data_dir), "hold",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        while (line := (await asyncio.wait_for(holder.stdout.readline(), 50)).decode()) != "OPENED second\n":
            assert line, "the holding node exited before it opened"
        with pytest.raises(ConfigError, match=rf"in use by another gateway node \(pid {holder.pid} on "):
            async with open_node(settings_of(data_dir), exclusive=True):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)  # dies without closing anything
        await holder.wait()
    async with open_node(settings_of(data_dir), exclusive=True) as node:
        assert (data_dir / "node.lock").read_text() == f"pid {os.getpid()} on {os.uname().nodename}"
        assert node.stores.backend == "sqlite"


async def test_scale_out_nodes_share_redis_but_not_a_data_dir(tmp_path: Path, redis_url: str) -> None:
    def scale_out(name: str, data_dir: Path) -> Settings:
        return load_settings(
            environ={},
            environment="development",
            node={"mode": "scaleout", "name": name, "data_dir": str(data_dir)},
            storage={"redis_url": redis_url, "redis_prefix": "node-lock:"},
            events={"codes": {"node_tag": name.upper() * 2}},
        )

    async with (
        open_node(scale_out("a", tmp_path / "a"), exclusive=True) as a,
        open_node(scale_out("b", tmp_path / "b"), exclusive=True) as b,
    ):
        assert (a.stores.backend, b.stores.backend) == ("redis", "redis")
        with pytest.raises(ConfigError, match=rf"{tmp_path / 'a'} is in use by another gateway node"):
            async with open_node(scale_out("c", tmp_path / "a"), exclusive=True):
                pass
