"""Provisioning and health-sweep throughput of the gateway against the camera simulator.

The simulator runs in a SEPARATE process (``python -m xueliang.connectors.onvif.simulator``), so
this process's CPU and memory are the gateway's own. This process opens a node (SQLite in a
temporary directory), bulk-imports a generated camera list of ``--count`` cameras through
``BulkImport`` (the code path of ``xueliang cameras import``), then runs the health sweep twice:
warm (media service addresses known from the import) and cold (as after a restart: each camera's
media service is asked for first). Prints one JSON line.

    .venv/bin/python benchmarks/provision.py                 # 31,000 cameras (targets: import < 300 s, sweep < 60 s)
    .venv/bin/python benchmarks/provision.py --count 2000    # quicker
    .venv/bin/python benchmarks/provision.py --count 2000 --profile import   # cProfile top functions to stderr
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from xueliang.gateway.cameras.bulk import BulkImport
from xueliang.gateway.cameras.service import CameraService
from xueliang.gateway.cameras.sweep import HealthSweep
from xueliang.gateway.models import CameraQuery
from xueliang.gateway.node import open_node
from xueliang.gateway.settings_loading import load_settings

VIDEO = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "vtest.avi"
PASSWORD = "Bench-Passw0rd"
TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def start_simulator(count: int) -> tuple[subprocess.Popen[str], int]:
    command = [
        sys.executable, "-m", "xueliang.connectors.onvif.simulator", "--count", str(count), "--http-port", "0",
        "--rtsp-port", "0", "--rtsp-count", "0", "--video", str(VIDEO), "--log-level", "WARNING",
    ]  # fmt: skip
    env = {**os.environ, "XUELIANG_SIM_PASSWORD": PASSWORD}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        raise SystemExit("the simulator did not start (run it by hand to see why)")
    return process, int(json.loads(line)["http_port"])


def camera_list(path: Path, count: int, port: int) -> None:
    lines = ["name,address,port,username,password,region_code,township,grid_code,category,priority"]
    for index in range(count):
        address = f"127.1.{(index + 1) >> 8}.{(index + 1) & 0xFF}"
        region = "511902" if index % 2 else "511903"
        lines.append(
            f"cam{index:05d},{address},{port},admin,{PASSWORD},{region},street{index % 40},"
            f"{region}{index % 400:06d},road,{1 + index % 5}"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _profiled(enabled: bool) -> cProfile.Profile | None:
    if not enabled:
        return None
    profiler = cProfile.Profile()
    profiler.enable()
    return profiler


def _report(profiler: cProfile.Profile | None, what: str) -> None:
    if profiler is None:
        return
    profiler.disable()
    print(f"--- cProfile: {what} (by own time) ---", file=sys.stderr)
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(30)


async def run(args: argparse.Namespace, sim_pid: int, port: int, workdir: Path) -> dict[str, Any]:
    settings = load_settings(
        environ={},
        environment="development",
        node={"data_dir": str(workdir / "var")},
        logging={"level": "WARNING"},
        cameras={"import_concurrency": args.concurrency, "sweep": {"concurrency": args.sweep_concurrency}},
    )
    source = workdir / "cameras.csv"
    camera_list(source, args.count, port)
    out: dict[str, Any] = {"benchmark": "provision", "count": args.count, "import_concurrency": args.concurrency}
    async with open_node(settings) as node, CameraService(node) as service:
        profiler = _profiled(args.profile == "import")
        sim0, cpu0, wall0 = process_cpu_s(sim_pid), time.process_time(), time.perf_counter()
        report = await BulkImport(service, actor="bench").run(source, workdir / "result.csv")
        wall = time.perf_counter() - wall0
        _report(profiler, "import")
        out["import"] = {
            "wall_s": round(wall, 2),
            "cameras_per_s": round(args.count / wall, 1),
            "gateway_cpu_s": round(time.process_time() - cpu0, 2),
            "simulator_cpu_s": round(process_cpu_s(sim_pid) - sim0, 2),
            "by_status": report.progress.by_status,
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }
        assert await service.count(CameraQuery()) == args.count - report.progress.by_status.get("error", 0)
        sweep = HealthSweep(node, service)
        for name in ("sweep_warm", "sweep_cold", "sweep_writing"):
            if name == "sweep_cold":
                service.endpoints = type(service.endpoints)()  # as after a restart
            if name == "sweep_writing":  # every record written back (last_seen), as every 10 minutes
                service.settings.sweep.last_seen_write_s = 0
            profiler = _profiled(args.profile == name)
            sim0, cpu0 = process_cpu_s(sim_pid), time.process_time()
            result = await sweep.sweep_once()
            _report(profiler, name)
            out[name] = {
                "wall_s": round(result.duration_s, 2),
                "cameras_per_s": round(result.checked / result.duration_s, 1),
                "gateway_cpu_s": round(time.process_time() - cpu0, 2),
                "simulator_cpu_s": round(process_cpu_s(sim_pid) - sim0, 2),
                "by_status": result.by_status,
                "written": result.written,
            }
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    out["targets"] = {"import_wall_s": 300, "sweep_wall_s": 60}
    out["cpus"] = os.cpu_count()
    out["load_avg_1m"] = round(os.getloadavg()[0], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=31_000, help="cameras (default 31,000)")
    parser.add_argument("--concurrency", type=int, default=128, help="import rows in flight (default 128)")
    parser.add_argument("--sweep-concurrency", type=int, default=512, help="sweep checks in flight (default 512)")
    parser.add_argument("--profile", choices=("import", "sweep_warm", "sweep_cold", "sweep_writing"), default=None)
    parser.add_argument("--uvloop", action="store_true", help="run the gateway side on uvloop")
    args = parser.parse_args()
    simulator, port = start_simulator(args.count)
    try:
        with tempfile.TemporaryDirectory(prefix="xl-provision-") as workdir:
            runner = asyncio.run
            if args.uvloop:
                import uvloop

                runner = uvloop.run
            result = runner(run(args, simulator.pid, port, Path(workdir)))
            result["uvloop"] = args.uvloop
    finally:
        simulator.terminate()
        simulator.wait(timeout=30)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
