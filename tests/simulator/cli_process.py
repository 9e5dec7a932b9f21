"""Run the simulator CLI as a child process (RTSP clients such as PyAV must not share its event loop)."""

from __future__ import annotations

import json
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.simulator.helpers import VIDEO


class SimulatorProcess:
    """``python -m xueliang.connectors.onvif.simulator`` on free ports; ``info`` is its ready line."""

    def __init__(self, *args: str, cache_dir: Path | None = None) -> None:
        command = [sys.executable, "-m", "xueliang.connectors.onvif.simulator", "--video", str(VIDEO),
                   "--http-port", "0", "--rtsp-port", "0", "--log-level", "WARNING", *args]  # fmt: skip
        if cache_dir is not None:
            command += ["--cache-dir", str(cache_dir)]
        self.stderr_tail = ""
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.info: dict[str, Any] = self._ready_line(timeout=120.0)

    def _ready_line(self, timeout: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if selector.select(timeout=0.5):
                line = self.process.stdout.readline()
                if line:
                    return dict(json.loads(line))
            if self.process.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"simulator CLI did not become ready: {self.stderr_tail}")

    def stop(self) -> int:
        """SIGTERM, then wait; return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None and not stream.closed:
                self.stderr_tail = stream.read()[-2000:] if stream is self.process.stderr else ""
                stream.close()
        return self.process.returncode
