"""Command line: ``python -m xueliang.connectors.onvif.simulator --count 50 --video PATH``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

from pydantic import ValidationError

from xueliang.connectors.onvif.simulator.config import DEFAULT_CACHE_DIR, SimulatorConfig
from xueliang.connectors.onvif.simulator.errors import SimulatorError
from xueliang.connectors.onvif.simulator.simulator import CameraSimulator

PASSWORD_ENV = "XUELIANG_SIM_PASSWORD"
#: the lab's well-known camera password, shown in --help and in the ready line (a password given by
#: --password or the environment is never printed)
BUILT_IN_PASSWORD: str = SimulatorConfig.model_fields["password"].default


def _size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 1920x1080")
    return int(width), int(height)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used by --help)."""
    parser = argparse.ArgumentParser(
        prog="python -m xueliang.connectors.onvif.simulator",
        description=(
            "ONVIF 摄像机模拟器 / ONVIF camera simulator: many cameras on 127.x.y.z addresses sharing one HTTP "
            "port (SOAP, snapshots, /_sim control API) and one RTSP port. Prints one JSON line when ready."
        ),
    )
    add = parser.add_argument
    add("--video", type=Path, required=True, help="video file shown by snapshots and streams (e.g. vtest.avi)")
    add("--count", type=int, default=50, help="number of cameras (default 50)")
    add("--base-address", default="127.1.0.1", help="address of camera 0 (default 127.1.0.1)")
    add(
        "--host-bind", default="0.0.0.0",
        help="listen address of the shared ports (default 0.0.0.0: one socket for every 127.x.y.z camera; "
        "connections on any address outside 127.0.0.0/8 are refused)",
    )  # fmt: skip
    add("--http-port", type=int, default=8800, help="HTTP port, 0 = any free port (default 8800)")
    add("--rtsp-port", type=int, default=8554, help="RTSP port, 0 = any free port (default 8554)")
    add("--rtsp-count", type=int, default=4, help="how many cameras stream RTSP (default 4)")
    add("--no-rtsp-auth", action="store_true", help="serve RTSP without digest authentication")
    add("--username", default="admin", help="camera user name (default admin)")
    add("--password", default=None, help=f"camera password (default: ${PASSWORD_ENV} or {BUILT_IN_PASSWORD})")
    add("--snapshot-size", type=_size, default=None, help="snapshot size WxH (default: the video's size)")
    add("--stream-size", type=_size, default=None, help="main stream size WxH (default: the video's size)")
    add("--name-prefix", default="SIM", help="camera name prefix (default SIM)")
    add("--ptz-every", type=int, default=10, help="every Nth camera has PTZ, 0 = none (default 10)")
    add("--seed", type=int, default=0, help="seed of camera identities (default 0)")
    add("--event-period", type=float, default=30.0, help="seconds between simulated motion switches (default 30)")
    add("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR, help=f"transcode cache (default {DEFAULT_CACHE_DIR})")
    add("--preload-snapshots", action="store_true", help="encode every snapshot frame before answering")
    add("--loop", choices=("auto", "uvloop", "asyncio"), default="auto",
        help="event loop: uvloop when installed (auto; about 30%% less CPU per request) or plain asyncio")  # fmt: skip
    add("--log-level", default="INFO", help="logging level (default INFO)")
    return parser


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """Turn parsed arguments into a validated SimulatorConfig."""
    password = args.password or os.environ.get(PASSWORD_ENV)
    extra = {"password": password} if password else {}
    return SimulatorConfig(
        count=args.count, base_address=args.base_address, host_bind=args.host_bind, http_port=args.http_port,
        rtsp_port=args.rtsp_port, rtsp_count=args.rtsp_count, rtsp_auth=not args.no_rtsp_auth,
        username=args.username, video=args.video, snapshot_size=args.snapshot_size, stream_size=args.stream_size,
        name_prefix=args.name_prefix, ptz_every=args.ptz_every, seed=args.seed, event_period_s=args.event_period,
        cache_dir=args.cache_dir, **extra,
    )  # fmt: skip


async def serve(config: SimulatorConfig, preload: bool) -> None:
    """Run until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with CameraSimulator(config) as sim:
        if preload:
            await sim.preload_snapshots()
        ready = {
            "ready": True, "count": len(sim.cameras), "base_address": config.base_address,
            "http_port": sim.http_port, "rtsp_port": sim.rtsp_port, "rtsp_count": config.rtsp_count,
            "control": f"http://127.0.0.1:{sim.http_port}/_sim/health", "startup_s": round(sim.startup_s, 3),
            "username": config.username,
            "password": config.password if config.password == BUILT_IN_PASSWORD else "(as given: not shown)",
        }  # fmt: skip
        print(json.dumps(ready), flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
    except ValidationError as exc:
        print(f"invalid simulator settings: {exc}", file=sys.stderr)
        return 2
    runner = asyncio.run
    if args.loop != "asyncio":
        try:
            import uvloop
        except ImportError:
            if args.loop == "uvloop":
                print("--loop uvloop: uvloop is not installed (pip install uvloop)", file=sys.stderr)
                return 2
        else:
            runner = uvloop.run
    try:
        runner(serve(config, args.preload_snapshots))
    except SimulatorError as exc:
        print(f"simulator failed: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"simulator cannot listen: {exc}; choose other ports (--http-port/--rtsp-port 0)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
