"""Camera simulator throughput: startup of 31,000 cameras, SOAP calls/s with WS-Security, snapshots/s.

The simulator runs as its own process (the CLI), the load comes from this process (aiohttp, keep-alive,
64 in flight), and the simulator's CPU time is read from /proc, so the figures say how much of a core
the simulator needs per request even on a busy machine. Prints one JSON line.

    .venv/bin/python benchmarks/simulator.py [--count 31000] [--seconds 10] [--uvloop]

(--uvloop runs the simulator on uvloop, its CLI default when installed; without it, plain asyncio.)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.simulator.cli_process import SimulatorProcess  # noqa: E402

PASSWORD = "Bench-Passw0rd"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DIGEST = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def device_information_request() -> bytes:
    """GetDeviceInformation with a fresh WS-UsernameToken PasswordDigest (new nonce every call)."""
    nonce = os.urandom(16)
    created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + PASSWORD.encode()).digest()).decode()
    return (
        '<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        f'xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><s:Header><wsse:Security xmlns:wsse="{WSSE}" '
        f'xmlns:wsu="{WSU}"><wsse:UsernameToken><wsse:Username>admin</wsse:Username><wsse:Password Type="{DIGEST}">'
        f"{digest}</wsse:Password><wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce>"
        f"<wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security></s:Header>"
        "<s:Body><tds:GetDeviceInformation/></s:Body></s:Envelope>"
    ).encode()


def address(index: int) -> str:
    """Camera ``index``'s address from the default base 127.1.0.1."""
    value = (127 << 24) + (1 << 16) + 1 + index
    return ".".join(str((value >> shift) & 0xFF) for shift in (24, 16, 8, 0))


async def soap_load(port: int, pid: int, cameras: int, seconds: float, concurrency: int) -> dict[str, Any]:
    """Keep-alive SOAP load: ``concurrency`` workers, each on its own camera."""
    done = errors = 0
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=1)
    headers = {"Content-Type": "application/soap+xml; charset=utf-8"}
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(k: int, until: float) -> None:
            nonlocal done, errors
            url = f"http://{address(k % cameras)}:{port}/onvif/device_service"
            while time.monotonic() < until:
                async with session.post(url, data=device_information_request(), headers=headers) as response:
                    await response.read()
                    done += response.status == 200
                    errors += response.status != 200

        warm_until = time.monotonic() + 1.0  # open the connections, warm the code paths
        await asyncio.gather(*(worker(k, warm_until) for k in range(concurrency)))
        done = errors = 0
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        await asyncio.gather(*(worker(k, t0 + seconds) for k in range(concurrency)))
        elapsed, cpu = time.monotonic() - t0, cpu_seconds(pid) - cpu0
    return {
        "requests": done, "errors": errors, "seconds": round(elapsed, 2), "requests_per_s": round(done / elapsed, 1),
        "simulator_cpu_s": round(cpu, 2), "simulator_cpu_ms_per_request": round(1000 * cpu / max(done, 1), 3),
        "simulator_cores_at_800_per_s": round(0.8 * cpu / max(done, 1) * 1000, 3),
    }  # fmt: skip


async def sweep(port: int, pid: int, cameras: int, concurrency: int) -> dict[str, Any]:
    """One GetDeviceInformation per camera on a new connection each (a health sweep)."""
    ok = failed = 0
    semaphore = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def probe(index: int) -> None:
            nonlocal ok, failed
            async with semaphore:
                url = f"http://{address(index)}:{port}/onvif/device_service"
                try:
                    async with session.post(url, data=device_information_request()) as response:
                        await response.read()
                        ok += response.status == 200
                        failed += response.status != 200
                except aiohttp.ClientError:
                    failed += 1

        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        await asyncio.gather(*(probe(i) for i in range(cameras)))
        elapsed, cpu = time.monotonic() - t0, cpu_seconds(pid) - cpu0
    return {"cameras": cameras, "ok": ok, "failed": failed, "seconds": round(elapsed, 2),
            "cameras_per_s": round(cameras / elapsed, 1), "simulator_cpu_s": round(cpu, 2)}  # fmt: skip


async def snapshot_load(port: int, pid: int, seconds: float, concurrency: int, cameras: int) -> dict[str, Any]:
    """Digest-authenticated snapshot GETs at 1920x1080 (aiohttp's DigestAuthMiddleware, as the onvif library)."""
    count = 0
    size = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    # aiohttp's digest middleware binds to the first origin it sees: one per camera, as the onvif library does
    middlewares = [(aiohttp.DigestAuthMiddleware("admin", PASSWORD),) for _ in range(cameras)]
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(k: int, until: float) -> None:
            nonlocal count, size
            index = k
            while time.monotonic() < until:
                url = f"http://{address(index % cameras)}:{port}/onvif/snapshot/1.jpg"
                async with session.get(url, middlewares=middlewares[index % cameras]) as response:
                    body = await response.read()
                    if response.status == 200:
                        count += 1
                        size = len(body)
                index += concurrency

        # warm-up: every frame of the clip encoded once at 1920x1080 (cold start cost reported separately)
        t0, cpu0 = time.monotonic(), cpu_seconds(pid)
        await asyncio.gather(*(worker(k, time.monotonic() + 20.0) for k in range(concurrency)))
        warm = {"seconds": round(time.monotonic() - t0, 2), "snapshots": count,
                "simulator_cpu_s": round(cpu_seconds(pid) - cpu0, 2)}  # fmt: skip
        count = 0
        t0, cpu0 = time.monotonic(), cpu_seconds(pid)
        await asyncio.gather(*(worker(k, time.monotonic() + seconds) for k in range(concurrency)))
        elapsed, cpu = time.monotonic() - t0, cpu_seconds(pid) - cpu0
        async with session.get(f"http://127.0.0.1:{port}/_sim/health") as response:
            counters = (await response.json())["counters"]
    return {
        "warmup": warm, "counters": {k: counters[k] for k in ("snapshots", "frames")}, "snapshots": count,
        "seconds": round(elapsed, 2), "snapshots_per_s": round(count / elapsed, 1), "jpeg_bytes": size,
        "simulator_cpu_ms_per_snapshot": round(1000 * cpu / max(count, 1), 3),
    }  # fmt: skip


def start(count: int, uvloop: bool, extra: list[str]) -> tuple[SimulatorProcess, float]:
    """Start the CLI; return it and the wall time to ready (process start, imports and listeners)."""
    t0 = time.monotonic()
    args = ["--count", str(count), "--password", PASSWORD, "--rtsp-count", "4", *extra]
    process = SimulatorProcess(*args, "--loop", "uvloop" if uvloop else "asyncio")
    return process, time.monotonic() - t0


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=31_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--uvloop", action="store_true", help="run the simulator on uvloop")
    args = parser.parse_args()
    result: dict[str, Any] = {"benchmark": "camera_simulator", "cameras": args.count, "uvloop": args.uvloop,
                              "cpu_count": os.cpu_count(), "loadavg_at_start": os.getloadavg()[0]}  # fmt: skip
    process, ready_s = start(args.count, args.uvloop, [])
    try:
        pid, port = process.process.pid, process.info["http_port"]
        result["startup"] = {"process_ready_s": round(ready_s, 2), "simulator_start_s": process.info["startup_s"]}
        result["soap_get_device_information"] = await soap_load(port, pid, args.count, args.seconds, args.concurrency)
        result["health_sweep"] = await sweep(port, pid, args.count, args.concurrency)
    finally:
        process.stop()
    process, _ = start(max(args.count // 100, 64), args.uvloop, ["--snapshot-size", "1920x1080"])
    try:
        pid, port = process.process.pid, process.info["http_port"]
        result["snapshot_1920x1080"] = await snapshot_load(port, pid, args.seconds, args.concurrency, 64)
    finally:
        process.stop()
    result["loadavg_at_end"] = os.getloadavg()[0]
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
