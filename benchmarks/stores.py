"""Store throughput, one JSON line per backend (ops/s, one operation = one item through the whole cycle).

- registry_upsert: upsert N distinct cameras, one call each.
- bus_publish_read_ack: publish N messages, then read them in batches of 100 and ack each batch.
- outbox_add_claim_deliver: add N items, claim them 100 at a time, mark each delivered.
- jobs_put_take_ack: put N jobs, take and ack each.

SQLite runs in a temporary directory; Redis on ``--redis-url``, or else on a private
``redis-server`` this script starts on a free loopback port and stops at the end.

    python benchmarks/stores.py [--n 5000] [--backend sqlite|redis|both] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import redis

from xueliang.gateway.models import CameraRecord, Location
from xueliang.gateway.settings_loading import load_settings
from xueliang.gateway.stores import Stores, open_stores


@contextmanager
def private_redis() -> Iterator[str]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    with tempfile.TemporaryDirectory() as workdir:
        args = [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ]
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            client = redis.Redis(port=port, socket_connect_timeout=0.5)
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.ping()
                    break
                except redis.exceptions.ConnectionError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise SystemExit("redis-server did not start: install redis-server") from None
                    time.sleep(0.02)
            client.close()
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.kill()
            process.wait()


async def timed(n: int, work: Callable[[], Awaitable[None]]) -> float:
    start = time.perf_counter()
    await work()
    return round(n / (time.perf_counter() - start), 1)


async def measure(stores: Stores, n: int) -> dict[str, float]:
    async def registry() -> None:
        for i in range(n):
            location = Location(region_code="511902", township="东城街道", grid_code=f"G-{i % 50:02d}")
            camera = CameraRecord(
                id=f"cam-{i:06d}",
                name=f"camera {i}",
                host=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
                location=location,
                category="road",
            )
            await stores.cameras.upsert(camera)

    async def bus() -> None:
        for i in range(n):
            await stores.bus.publish("bench", {"camera": f"cam-{i}", "score": 0.87, "label": "person"})
        done = 0
        while done < n:
            batch = await stores.bus.read("bench", "bench-group", "bench-consumer", count=100, block_s=0)
            await stores.bus.ack("bench", "bench-group", [m.id for m in batch])
            done += len(batch)

    async def outbox() -> None:
        for i in range(n):
            await stores.outbox.add(f"5119-2026-{i:06d}", {"case": i, "grade": "orange"})
        done = 0
        while done < n:
            items = await stores.outbox.claim("bench", limit=100, lease_s=60)
            for item in items:
                await stores.outbox.mark_delivered(item.key, {"status": 201})
            done += len(items)

    async def jobs() -> None:
        for i in range(n):
            await stores.jobs.put(f"cam-{i}", {"camera": f"cam-{i}"})
        for _ in range(n):
            job = await stores.jobs.take("bench", timeout_s=1)
            assert job is not None
            await stores.jobs.ack(job)

    return {
        "registry_upsert_ops_s": await timed(n, registry),
        "bus_publish_read_ack_ops_s": await timed(n, bus),
        "outbox_add_claim_deliver_ops_s": await timed(n, outbox),
        "jobs_put_take_ack_ops_s": await timed(n, jobs),
    }


async def run(backend: str, n: int, redis_url: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = load_settings(
            environ={},
            environment="development",
            node={"mode": "scaleout" if backend == "redis" else "embedded", "data_dir": data_dir},
            events={"codes": {"node_tag": "B01"}},
            storage={
                "redis_url": redis_url,
                "redis_prefix": "bench:",
                "job_queue_capacity": n + 1,
                "bus_maxlen": max(n, 100),
            },
        )
        async with await open_stores(settings) as stores:
            figures = await measure(stores, n)
    return {"benchmark": "stores", "backend": backend, "n": n, **figures, "python": platform.python_version()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="items per operation (default 5000)")
    parser.add_argument("--backend", choices=["sqlite", "redis", "both"], default="both")
    parser.add_argument("--redis-url", default="", help="an existing Redis (its database is flushed!)")
    args = parser.parse_args()

    backends = ["sqlite", "redis"] if args.backend == "both" else [args.backend]
    for backend in backends:
        if backend == "redis" and not args.redis_url:
            with private_redis() as url:
                result = asyncio.run(run(backend, args.n, url))
        else:
            if backend == "redis":
                redis.Redis.from_url(args.redis_url).flushdb()
            result = asyncio.run(run(backend, args.n, args.redis_url or "redis://127.0.0.1:6379/0"))
        print(json.dumps(result), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
