"""Per-camera cost of ``OnvifClient.probe()`` against a replay of the real Hikvision captures.

The replay server runs in a child process (its CPU is not counted) on ``--hosts`` loopback
addresses, one port, so cameras are distinct TCP peers as in a real import. This process probes
``--cameras`` cameras with ``--concurrency`` in flight through one shared session, and prints one
JSON line: client CPU ms per probe (process time / probes), wall-clock probes per second, SOAP
calls per probe (not counted on the wire: derived from each probe's result as the calls
``probe()`` makes for it, 4 + 2 per profile + 1 with PTZ + 1 when it fell back to
GetCapabilities).

    .venv/bin/python benchmarks/onvif_probe.py [--cameras 2000] [--concurrency 64] [--profile]
    .venv/bin/python benchmarks/onvif_probe.py --simulator --cameras 5000   # the camera simulator instead
    .venv/bin/python benchmarks/onvif_probe.py --compare-zeep   # zeep vs lxml parsing of one probe's answers

With ``--simulator`` the cameras are the simulator's (digest auth checked, Media2, 2 profiles,
every 10th with PTZ), one address each, run in the child process like the replay.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import multiprocessing
import pstats
import time
from pathlib import Path
from typing import Any

from xueliang.connectors.onvif import OnvifClient, OnvifSettings, create_session, warm_up
from xueliang.connectors.onvif.replay import CaptureReplayServer

CAPTURES = Path(__file__).resolve().parents[1] / ".." / "shared" / "onvif-captures"


def _serve(camera_dir: str, hosts: tuple[str, ...], ready: Any, stop: Any) -> None:
    async def main() -> None:
        async with CaptureReplayServer(Path(camera_dir), hosts=hosts, live_clock=True) as server:
            ready.put((server.port, hosts, "admin", "pw"))
            await asyncio.get_running_loop().run_in_executor(None, stop.wait)

    asyncio.run(main())


def _simulate(count: int, ready: Any, stop: Any) -> None:
    from xueliang.connectors.onvif.simulator import CameraSimulator, SimulatorConfig

    async def main() -> None:
        config = SimulatorConfig(count=count, video=CAPTURES.parent / "data" / "vtest.avi", rtsp_count=0)
        async with CameraSimulator(config) as simulator:
            hosts = tuple(camera.address for camera in simulator.cameras)
            ready.put((simulator.http_port, hosts, config.username, config.password))
            await asyncio.get_running_loop().run_in_executor(None, stop.wait)

    asyncio.run(main())


async def _probe_all(
    port: int, hosts: tuple[str, ...], credentials: tuple[str, str], cameras: int, concurrency: int
) -> dict[str, Any]:
    settings = OnvifSettings(timeout_s=30)
    await warm_up()
    limit = asyncio.Semaphore(concurrency)
    failures: list[str] = []
    calls = [0]
    async with create_session(settings) as session:

        async def one(index: int) -> None:
            host = hosts[index % len(hosts)]
            async with limit, OnvifClient(host, port, *credentials, session=session) as client:
                result = await client.probe()
                calls[0] += 4 + 2 * len(result.profiles) + (1 if result.ptz else 0) + result.used_capabilities_fallback
                if len(result.profiles) < 2:
                    failures.append(f"camera {index}: {len(result.profiles)} profiles")

        cpu0, wall0 = time.process_time(), time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for index in range(cameras):
                group.create_task(one(index))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {"cpu_s": cpu, "wall_s": wall, "failures": failures, "calls": calls[0]}


def run_probe_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    if args.simulator:
        server = context.Process(target=_simulate, args=(args.cameras, ready, stop), daemon=True)
    else:
        replay_hosts = tuple(f"127.77.{i // 250}.{i % 250 + 1}" for i in range(args.hosts))
        target = str(CAPTURES / "hikvision")
        server = context.Process(target=_serve, args=(target, replay_hosts, ready, stop), daemon=True)
    server.start()
    try:
        port, hosts, username, password = ready.get(timeout=120)
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        outcome = asyncio.run(_probe_all(port, hosts, (username, password), args.cameras, args.concurrency))
        if profiler:
            profiler.disable()
            stats = pstats.Stats(profiler).sort_stats("tottime")
            stats.print_stats(25)
    finally:
        stop.set()
        server.join(timeout=10)
    calls_per_probe = outcome["calls"] / args.cameras
    return {
        "benchmark": "onvif_probe",
        "target": "simulator" if args.simulator else "replay:hikvision",
        "cameras": args.cameras,
        "concurrency": args.concurrency,
        "hosts": len(hosts),
        "soap_calls_per_probe": round(calls_per_probe, 2),
        "client_cpu_ms_per_probe": round(outcome["cpu_s"] / args.cameras * 1000, 3),
        "client_cpu_ms_per_call": round(outcome["cpu_s"] / args.cameras / calls_per_probe * 1000, 3),
        "probes_per_s": round(args.cameras / outcome["wall_s"], 1),
        "wall_s": round(outcome["wall_s"], 3),
        "failures": len(outcome["failures"]),
        "profiled": bool(args.profile),
    }


def compare_zeep(rounds: int) -> dict[str, Any]:
    """Time zeep's typed deserialisation against this connector's lxml parsers on one probe's answers."""
    import requests  # zeep's own dependency, for its Response type
    from onvif.client import ZeepAsyncClient
    from onvif.definition import SERVICES
    from onvif.settings import DEFAULT_SETTINGS
    from onvif.transport import ASYNC_TRANSPORT
    from zeep.wsdl import Document

    from xueliang.connectors.onvif import parsers
    from xueliang.connectors.onvif.wsdl import WSDL_DIR

    answers = [
        ("devicemgmt", "core", "GetSystemDateAndTime", parsers.parse_system_date_time, 1),
        ("devicemgmt", "core", "GetDeviceInformation", parsers.parse_device_information, 1),
        ("devicemgmt", "core", "GetServices", parsers.parse_services, 1),
        ("media", "media", "GetProfiles", parsers.parse_profiles_media1, 1),
        ("media", "media", "GetStreamUri", parsers.parse_media_uri, 3),
        ("media", "media", "GetSnapshotUri", parsers.parse_media_uri, 3),
        ("ptz", "ptz", "GetPresets", parsers.parse_presets, 1),
    ]
    bindings: dict[str, Any] = {}
    zeep_ms = lxml_ms = 0.0
    for service, folder, method, parser, times in answers:
        if service not in bindings:
            definition = SERVICES[service]
            document = Document(str(WSDL_DIR / definition["wsdl"]), ASYNC_TRANSPORT, settings=DEFAULT_SETTINGS)
            client = ZeepAsyncClient(wsdl=document, transport=ASYNC_TRANSPORT, settings=DEFAULT_SETTINGS)
            qname = "{{{}}}{}".format(definition["ns"], definition["binding"])
            bindings[service] = (client, client.wsdl.bindings[qname])
        client, binding = bindings[service]
        content = (CAPTURES / "hikvision" / folder / f"{method}.Response.xml").read_bytes()
        response = requests.Response()
        response._content, response.status_code = content, 200
        response.headers["Content-Type"] = "application/soap+xml"
        start = time.perf_counter()
        for _ in range(rounds):
            binding.process_reply(client, binding.get(method), response)
        zeep_ms += (time.perf_counter() - start) / rounds * 1000 * times
        start = time.perf_counter()
        for _ in range(rounds):
            parser(parsers.first_child(parsers.soap_body(parsers.parse_xml(content))))
        lxml_ms += (time.perf_counter() - start) / rounds * 1000 * times
    return {
        "benchmark": "onvif_parse_compare",
        "capture": "hikvision",
        "zeep_parse_ms_per_probe": round(zeep_ms, 3),
        "lxml_parse_ms_per_probe": round(lxml_ms, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=2000, help="probes to run")
    parser.add_argument("--concurrency", type=int, default=64, help="probes in flight at once")
    parser.add_argument("--hosts", type=int, default=500, help="distinct loopback addresses the replay listens on")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions (slows the run)")
    parser.add_argument("--simulator", action="store_true", help="probe the camera simulator, not the replay")
    parser.add_argument("--compare-zeep", action="store_true", help="only compare zeep and lxml parsing")
    args = parser.parse_args()
    result = compare_zeep(200) if args.compare_zeep else run_probe_benchmark(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
