"""Fixtures every part's tests may use. Parts add their own in ``tests/<part>/conftest.py``.

- ``redis_server`` (session): a real ``redis-server`` on a free loopback port, no persistence;
  yields its URL and is killed at the end.
- ``redis_url`` (function): that server's URL with database 0 flushed, so each test starts clean.
- ``disposable_redis`` (function): a private server the test may stop (``.stop()``) and start
  again (``.start()``, same port) to see how its code behaves when Redis goes away and comes back.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import NoReturn

import pytest
import redis

pytest_plugins = ["tests.hang_report"]  # a test past 120 s reports its event loop's tasks

REDIS_SERVER = "/usr/bin/redis-server"


def free_port() -> int:
    """A loopback TCP port free a moment ago (bound, then released): nothing listens on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisProcess:
    """A ``redis-server`` child process on 127.0.0.1; ``url`` is ``redis://127.0.0.1:<port>/0``.

    ``stop()`` kills it (SIGKILL: no final save); ``start()`` starts it again on the same port and
    directory. With ``appendonly`` every write is in the AOF (fsync always), so it comes back with its
    data; without, it comes back empty."""

    def __init__(self, workdir: Path, *, appendonly: bool = False) -> None:
        if not Path(REDIS_SERVER).exists() and shutil.which("redis-server") is None:
            pytest.fail("redis-server not found: install redis-server (make test does it)")
        self.binary = REDIS_SERVER if Path(REDIS_SERVER).exists() else str(shutil.which("redis-server"))
        self.workdir = workdir
        self.appendonly = appendonly
        workdir.mkdir(parents=True, exist_ok=True)
        for _attempt in range(5):  # another process may grab the free port before redis binds it
            self.port = free_port()
            if self._spawn():
                return
        self._fail()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it again, after ``stop()``, on the same port and directory."""
        if not self._spawn():
            self._fail()

    def _spawn(self) -> bool:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir)]
        args += ["--save", "", "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "always"]
        args += ["--logfile", str(self.workdir / f"redis-{self.port}.log")]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self._wait_ready():
            return True
        self.stop()
        return False

    def _fail(self) -> NoReturn:
        log = (self.workdir / f"redis-{self.port}.log").read_text(errors="replace")[-2000:]
        pytest.fail(f"redis-server did not answer PING on 127.0.0.1:{self.port} (last log lines):\n{log}")

    def _wait_ready(self, timeout_s: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout_s
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    if client.ping():
                        return True
                except redis.exceptions.ConnectionError:
                    time.sleep(0.02)
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: str) -> str:
    client = redis.Redis.from_url(redis_server)
    try:
        client.flushdb()
    finally:
        client.close()
    return redis_server


@pytest.fixture
def disposable_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path / "redis")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def exit_stack() -> AsyncIterator[contextlib.AsyncExitStack]:
    """Servers a test starts through a factory fixture (simulators, replays) are entered here and
    stopped, newest first, when the test ends."""
    async with contextlib.AsyncExitStack() as stack:
        yield stack
