"""End-to-end fixtures: every peer a real process on loopback, each in its own session.

- ``procs``: starts ``Process``es (own process group, output to a log file under the test's
  tmp_path) and kills every one of them, with its group, when the test ends, whatever happened;
- ``Gateway``: ``xueliang run --config FILE`` (or ``xueliang demo``) with its own data directory and
  port; ``wait_ready()`` polls ``/readyz`` and fails early with the log tail if the process died;
- ``Intake``: the reference intake ``python -m xueliang.events.intake`` with its own SQLite file;
  ``stats()``/``control()`` are its ``/api/v1/stats`` and ``/_control``.

Waits are bounds (poll until true, fail with what was seen), never measured figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
SHARED = (REPO / ".." / "shared").resolve()
VIDEO = SHARED / "data" / "vtest.avi"
MODEL = SHARED / "models" / "yolox_nano.onnx"
SECRET = "e2e-forwarder-secret-0123456789abcdef"
CALLBACK_SECRET = "e2e-callback-secret-0123456789abcdef"


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child: ours without XUELIANG_* settings (the test's file decides)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XUELIANG_")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` seconds (a bound, not a figure)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Process:
    """A child process in a new session: ``kill`` and ``stop`` reach its whole process group."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        self.env = env or child_env()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text("utf-8", errors="replace")[-chars:] if self.log.exists() else ""

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send ``sig`` to the process group; wait for the process when it is SIGKILL."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(self.proc.pid, sig)
        if sig == signal.SIGKILL:
            self.proc.wait(10)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM to the group, SIGKILL if it has not ended within ``timeout``; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):  # children left in the group (none expected) go too
            os.killpg(self.proc.pid, signal.SIGKILL)
        return self.proc.returncode


class Procs:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[Process] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Process:
        process = Process(name, argv, self.tmp_path / f"{name}.log", env)
        process.start()
        self.started.append(process)
        return process


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    made = Procs(tmp_path)
    try:
        yield made
    finally:
        for process in reversed(made.started):
            process.stop()


class Intake:
    """The reference intake as a process on a port chosen now; ``callback_url`` and ``api_key`` may be
    set until ``start()``; ``stop()`` and ``start()`` again bring it back on the same port and file."""

    def __init__(self, procs: Procs, *, step_s: float = 0.3) -> None:
        self.procs = procs
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = procs.tmp_path / "intake.sqlite3"
        self.step_s = step_s
        self.callback_url = ""
        self.api_key = ""
        self.process: Process | None = None

    async def start(self) -> None:
        argv = [
            sys.executable, "-m", "xueliang.events.intake", "--port", str(self.port), "--db", str(self.db),
            "--secret", SECRET, "--callback-secret", CALLBACK_SECRET, "--step-s", str(self.step_s), "--seed", "7",
        ]  # fmt: skip
        if self.callback_url:
            argv += ["--callback-url", self.callback_url]
        env = child_env(XUELIANG_INTAKE_CALLBACK_API_KEY=self.api_key) if self.api_key else child_env()
        self.process = self.procs.start(f"intake-{len(self.procs.started)}", argv, env)
        await wait_for(self._up, 30, f"the intake on {self.url} (log: {self.process.log})")

    async def _up(self) -> bool:
        assert self.process is not None
        if not self.process.running:
            raise AssertionError(f"the intake exited: {self.process.tail()}")
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"{self.url}/api/v1/stats", timeout=1)).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    async def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as client:
            response = await client.request(method, path, json=body)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    async def stats(self) -> dict[str, Any]:
        """The intake's own counts (``received``: distinct cases stored)."""
        return await self._json("GET", "/api/v1/stats")

    async def control(self, **chaos: Any) -> None:
        """Misbehave as told (``Chaos`` fields); no arguments: behave again."""
        await self._json("POST", "/_control", chaos)


class Gateway:
    """``xueliang run --config FILE`` (``command="demo"``: ``xueliang demo``) as a process."""

    def __init__(self, procs: Procs, config: dict[str, Any], *, command: str = "run") -> None:
        self.procs = procs
        self.port = int(config.setdefault("http", {}).setdefault("port", free_port()))
        config["http"].setdefault("host", "127.0.0.1")
        self.data_dir = Path(config.setdefault("node", {}).setdefault("data_dir", str(procs.tmp_path / "gateway")))
        self.config = config
        self.config_file = procs.tmp_path / f"gateway-{command}.yaml"
        self.config_file.write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
        self.command = command
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: Process | None = None
        self.starts = 0

    @property
    def argv(self) -> list[str]:
        return [sys.executable, "-m", "xueliang.gateway", self.command, "--config", str(self.config_file)]

    def launch(self) -> Process:
        self.starts += 1
        self.process = self.procs.start(f"gateway-{self.command}-{self.starts}", self.argv)
        return self.process

    async def start(self, timeout: float = 60) -> None:
        process = self.launch()
        await wait_for(self._ready, timeout, f"the gateway at {self.url} to be ready (log: {process.log})")

    async def _ready(self) -> bool:
        assert self.process is not None
        if not self.process.running:
            raise AssertionError(f"the gateway exited {self.process.proc and self.process.proc.returncode}: "
                                 f"{self.process.tail()}")  # fmt: skip
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"{self.url}/readyz", timeout=2)).status_code == 200
        except httpx.HTTPError:
            return False

    def admin(self) -> tuple[str, str]:
        """The bootstrap admin (development mode keeps it in the data directory)."""
        username, password = (self.data_dir / "admin-credentials.txt").read_text().split()[:2]
        return username, password

    async def login(self, username: str | None = None, password: str | None = None) -> str:
        if username is None or password is None:
            username, password = self.admin()
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as client:
            response = await client.post("/api/auth/login", json={"username": username, "password": password})
            response.raise_for_status()
            return str(response.json()["access_token"])

    def client(self, token: str | None = None, **headers: str) -> httpx.AsyncClient:
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10)


def development_config(tmp_path: Path, **sections: Any) -> dict[str, Any]:
    """A development-mode gateway config of its own: data dir under ``tmp_path``, a free port, no
    sweep; ``sections`` merged over it (one level deep)."""
    config: dict[str, Any] = {
        "environment": "development",
        "node": {"data_dir": str(tmp_path / "gateway"), "name": "e2e"},
        "http": {"host": "127.0.0.1", "port": free_port()},
        "logging": {"level": "INFO"},
        "cameras": {"sweep": {"enabled": False}},
        "detector": {"model_path": str(MODEL)},
        "demo": {"video": str(VIDEO)},
    }
    for key, value in sections.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config
