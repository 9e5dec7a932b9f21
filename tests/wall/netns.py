"""Run WebRTC scenarios inside a private network (and PID) namespace.

aioice leaves 127.0.0.1 out of its host candidates and Chromium ignores loopback interfaces, so two
peers on one machine need another local address. ``run_in_netns`` starts pytest on a scenario file
under ``unshare --net --pid --fork --kill-child --mount-proc`` with a veth pair (10.211.0.1/.2)
and loopback up. Everything started inside (gateway, simulator, Chromium) lives in that PID
namespace: when its first process ends, or the outer test kills it, the kernel kills the rest, and
the namespaces disappear with them. Nothing is left behind on the machine.

Needs root (CI runs ``make test`` as root) and iproute2 (``make system-deps`` installs it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

NETNS_ENV = "XL_WALL_NETNS"
REPO = Path(__file__).resolve().parents[2]
SETUP = (
    "set -e; ip link set lo up; "
    "ip link add xlw0 type veth peer name xlw1; "
    "ip addr add 10.211.0.1/24 dev xlw0; ip addr add 10.211.0.2/24 dev xlw1; "
    "ip link set xlw0 up; ip link set xlw1 up; "
    'exec "$@"'
)


def in_netns() -> bool:
    return os.environ.get(NETNS_ENV) == "1"


def netns_problem() -> str:
    """Why scenarios cannot run here ("" when they can)."""
    if os.geteuid() != 0:
        return "WebRTC scenarios need root to create a network namespace (CI runs make test as root)"
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} not found: install util-linux and iproute2 (make system-deps)"
    return ""


def netns_argv(argv: list[str]) -> list[str]:
    """The command line running ``argv`` in a fresh network + PID namespace (set ``NETNS_ENV`` too)."""
    return ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc", "--", "sh", "-c", SETUP, "sh", *argv]


def run_in_netns(pytest_args: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pytest <pytest_args>`` in a fresh namespace; output captured, never left running."""
    command = netns_argv([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *pytest_args])
    env = {**os.environ, NETNS_ENV: "1"}
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s, check=False)
