"""Patrol pipeline benchmark on the real model and real frames; prints one JSON line per figure.

    .venv/bin/python benchmarks/pipeline.py [--model ../shared/models/yolox_nano.onnx] [--quick]

(a) ``limit``: the compute chain alone (JPEG decode at reduced scale + letterbox + session.run +
    output decode) on the same 1920x1080 JPEGs, in plain threads, no I/O and no event loop:
    1 session x 1 intra-op thread, 1 x 2, and 2 sessions x 1 thread side by side. Best = limit.
(b) ``pipeline``: end-to-end from snapshot source to anomaly (``xueliang.inference.pipeline``:
    grab over HTTP with digest auth, quality checks, detect, zone rules, evidence) at full speed,
    and its ratio to the limit (target >= 0.9). Falls back to source -> detect when the rules
    side is absent, and says so.
(c) ``capacity``: cameras one node patrols at 1 frame/camera/minute = frames/s x 60, from
    1920x1080 JPEG snapshots served by a local HTTP server in a separate process (the cameras'
    CPU is not the node's), with and without reduced-scale JPEG decode (target >= 3,000).
(d) ``latency``: frame-to-anomaly p50/p99 under an open-loop arrival rate of 3,000 cameras a
    minute (50 frames/s), or 90 % of the measured capacity when that is lower.

Every figure is the median of several repetitions; ``where`` says where the time goes. The host's
load average is printed first: on a shared machine the figures are lower bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from xueliang.inference.detector import Detector
from xueliang.inference.detector.engine import Ask, Engine
from xueliang.inference.detector.stats import StatsRecorder
from xueliang.inference.frames import Detection, Frame
from xueliang.inference.settings import DetectorSettings, SourceSettings
from xueliang.inference.sources import SnapshotClient
from xueliang.inference.sources.jpeg import decode_jpeg

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("XUELIANG_SHARED", REPO / ".." / "shared")).resolve()
TARGET_CAMERAS = 3000
USER, PASSWORD = "admin", "bench-pw"


def emit(**fields: Any) -> None:
    print(json.dumps(fields, ensure_ascii=False), flush=True)


def make_jpegs(count: int) -> list[bytes]:
    """``count`` 1920x1080 JPEGs (quality 85) made from frames spread over vtest.avi."""
    cap = cv2.VideoCapture(str(SHARED / "data" / "vtest.avi"))
    frames = []
    index = 0
    step = max(1, 780 // count)
    while len(frames) < count:
        ok, image = cap.read()
        if not ok:
            break
        if index % step == 0:
            big = cv2.resize(image, (1920, 1080), interpolation=cv2.INTER_CUBIC)
            frames.append(cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
        index += 1
    cap.release()
    return frames


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- (a) the limit -------------------------------------------------------------------------------


def compute_chain(
    model: Path, jpegs: list[bytes], *, sessions: int, threads: int, frames: int, reduced: bool
) -> tuple[float, float]:
    """Frames/s and CPU ms per frame of decode + letterbox + run + output decode in ``sessions`` threads."""
    settings = DetectorSettings(model_path=model, sessions=sessions, intra_op_num_threads=threads)
    engine = Engine(settings, StatsRecorder())
    ask = Ask(engine.class_filter(None), settings.min_score)
    target = engine.adapter.input_size if reduced else None
    per_worker = frames // sessions

    def work(offset: int) -> None:
        for i in range(per_worker):
            image, scale = decode_jpeg(jpegs[(offset + i) % len(jpegs)], target=target)
            engine.infer([Frame("bench", image, 0.0, scale=scale)], [ask])

    work(0)  # warm-up of the decode path
    workers = [threading.Thread(target=work, args=(k * 7,)) for k in range(sessions)]
    cpu0, started = cpu_seconds(), time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    done = per_worker * sessions
    return done / (time.perf_counter() - started), (cpu_seconds() - cpu0) * 1e3 / done


def stage_times(model: Path, jpegs: list[bytes], reduced: bool) -> dict[str, float]:
    """Median milliseconds of each compute stage on one thread (where the time goes)."""
    engine = Engine(DetectorSettings(model_path=model), StatsRecorder())
    target = engine.adapter.input_size if reduced else None
    ask = Ask(engine.class_filter(None), 0.35)
    dec, pre, run, post = [], [], [], []
    batch = np.empty((1, 3, engine.adapter.input_size[1], engine.adapter.input_size[0]), np.float32)
    for data in jpegs * 2:
        t0 = time.perf_counter()
        image, _ = decode_jpeg(data, target=target)
        t1 = time.perf_counter()
        _, lb = engine.adapter.preprocess(image, batch[0])
        t2 = time.perf_counter()
        outs = engine.sessions[0].run(engine.adapter.output_names, {engine.info.input.name: batch})
        t3 = time.perf_counter()
        engine.adapter.decode(outs, 0, lb, min_score=ask.min_score, keep=ask.keep, nms_iou=0.45)
        t4 = time.perf_counter()
        dec.append(t1 - t0), pre.append(t2 - t1), run.append(t3 - t2), post.append(t4 - t3)
    med = lambda xs: round(statistics.median(xs) * 1e3, 2)  # noqa: E731
    return {
        "jpeg_decode_ms": med(dec),
        "letterbox_ms": med(pre),
        "session_run_ms": med(run),
        "postprocess_ms": med(post),
    }


# --- the camera side: a snapshot server in its own process ---------------------------------------


def serve(jpeg_dir: Path, port_file: Path) -> None:
    """Child process: serve jpeg_dir/<n>.jpg at /snap/<n>.jpg behind a digest challenge."""
    from aiohttp import web

    bodies = {p.stem: p.read_bytes() for p in jpeg_dir.glob("*.jpg")}
    challenge = 'Digest realm="IP Camera", nonce="0a1b2c3d", qop="auth", algorithm=MD5'

    async def snap(request: web.Request) -> web.Response:
        if not request.headers.get("Authorization", "").startswith("Digest "):
            return web.Response(status=401, headers={"WWW-Authenticate": challenge})
        return web.Response(body=bodies[request.match_info["n"]], content_type="image/jpeg")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/snap/{n}.jpg", snap)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        tmp = port_file.with_suffix(".tmp")
        tmp.write_bytes(str(runner.addresses[0][1]).encode())
        tmp.rename(port_file)
        await asyncio.Event().wait()

    asyncio.run(main())


@dataclass
class Node:
    """What one measured run wires together."""

    visit: Callable[[str], Awaitable[int]]  # camera id -> anomalies (or detections) produced
    detector: Detector
    client: SnapshotClient
    mode: str


async def build_node(model: Path, base_url: str, n_jpegs: int, det: DetectorSettings, src: SourceSettings) -> Node:
    detector = Detector(det)
    await detector.start()
    client = SnapshotClient(src, target_size=detector.input_size)
    sources: dict[str, Any] = {}

    def source_for(camera_id: str) -> Any:
        # one source per camera for the node's life: its digest challenge is reused (one round trip)
        found = sources.get(camera_id)
        if found is None:
            n = int(camera_id.rsplit("-", 1)[1]) % n_jpegs
            found = sources[camera_id] = client.source(
                camera_id, f"{base_url}/snap/{n}.jpg", username=USER, password=PASSWORD
            )
        return found

    try:
        from xueliang.inference.patrol.models import PatrolJob
        from xueliang.inference.patrol.settings import PipelineSettings
        from xueliang.inference.pipeline import PatrolPipeline
        from xueliang.inference.zones import Zone
    except ImportError:

        async def detect_only(camera_id: str) -> int:
            frame = await source_for(camera_id).read()
            dets: list[Detection] = await detector.detect(frame)
            return len(dets)

        return Node(detect_only, detector, client, "source -> detect (rules stage pending)")

    whole = Zone(id="all", name="全画面 / whole view", kind="intrusion", polygon=((0, 0), (1, 0), (1, 1), (0, 1)))

    async def no_sink(anomaly: Any) -> None:
        return None

    class NoJobs:  # visits are driven directly through process(); the job queue is not measured
        async def take(self, consumer: str, timeout_s: float) -> None:
            return None

        async def ack(self, job: Any) -> None:
            return None

    pipeline: Any = PatrolPipeline(
        NoJobs(), lambda job: source_for(job.camera_id), detector, no_sink, PipelineSettings(cpu_threads=1)
    )

    async def visit(camera_id: str) -> int:
        now = time.time()
        job = PatrolJob(camera_id=camera_id, due_at=now, queued_at=now, interval_s=60.0, priority=3, zones=(whole,))
        return len(await pipeline.process(job))

    return Node(visit, detector, client, "source -> quality -> detect -> rules -> anomaly")


async def close_node(node: Node) -> None:
    await node.client.close()
    await node.detector.stop()


async def closed_loop(node: Node, frames: int, concurrency: int, cameras: int) -> dict[str, float]:
    """Frames/s with ``concurrency`` visits in flight; cycles over ``cameras`` camera ids."""

    async def run(count: int, width: int) -> int:
        todo = iter(range(count))
        produced = 0

        async def worker() -> None:
            nonlocal produced
            for i in todo:
                produced += await node.visit(f"cam-{i % cameras}")

        async with asyncio.TaskGroup() as tg:
            for _ in range(width):
                tg.create_task(worker())
        return produced

    await run(8, 4)  # warm-up: every path taken once
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    produced = await run(frames, concurrency)
    wall = time.perf_counter() - t0
    return {
        "fps": frames / wall,
        "cpu_cores_used": (cpu_seconds() - cpu0) / wall,
        "outputs_per_frame": produced / frames,
    }


async def open_loop(node: Node, rate: float, seconds: float, cameras: int, limit: int) -> dict[str, float]:
    """Latency from due time to result at ``rate`` visits/s arriving on schedule, ``limit`` patrol
    workers (visits in flight, as ``PipelineSettings.workers``): a visit waits for a free worker."""
    gate = asyncio.Semaphore(limit)
    latencies: list[float] = []
    t0 = time.perf_counter()

    async def one(i: int) -> None:
        due = t0 + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        async with gate:
            await node.visit(f"cam-{i % cameras}")
        latencies.append(time.perf_counter() - due)

    total = int(rate * seconds)
    async with asyncio.TaskGroup() as tg:
        for i in range(total):
            tg.create_task(one(i))
    wall = time.perf_counter() - t0
    arr = np.asarray(latencies) * 1e3
    return {
        "offered_fps": rate,
        "achieved_fps": total / wall,
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
    }


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}


async def node_runs(args: argparse.Namespace, base_url: str, n_jpegs: int, server_pid: int) -> None:
    model = Path(args.model)
    configs = [
        ("2 sessions x 1 thread", DetectorSettings(model_path=model, sessions=2)),
        ("1 session x 2 threads", DetectorSettings(model_path=model, intra_op_num_threads=2)),
    ]
    reps, frames = (1, 60) if args.quick else (3, 240)
    best: tuple[float, str, DetectorSettings] | None = None
    results: dict[str, dict[str, float]] = {}
    for reduced in (True, False):
        for name, det in configs:
            src = SourceSettings(reduced_decode=reduced, decode_threads=1)
            node = await build_node(model, base_url, n_jpegs, det, src)
            server0 = cpu_seconds(server_pid)
            runs = [await closed_loop(node, frames, args.concurrency, args.cameras) for _ in range(reps)]
            stats = node.detector.stats()
            await close_node(node)
            m = median_of(runs)
            label = f"{name}, {'reduced' if reduced else 'full'} decode"
            results[label] = m
            emit(
                figure="pipeline_config", config=label, mode=node.mode, **m,
                capacity_cameras=int(m["fps"] * 60),
                server_cpu_s_per_frame=round((cpu_seconds(server_pid) - server0) / (frames * reps + 8 * reps), 5),
                inference_ms_p50=round(stats.inference_ms.p50, 2),
                preprocess_ms_p50=round(stats.preprocess_ms.p50, 2),
                postprocess_ms_p50=round(stats.postprocess_ms.p50, 2),
                detector_latency_ms_p50=round(stats.latency_ms.p50, 2),
            )  # fmt: skip
            args.mode = node.mode
            if reduced and (best is None or m["fps"] > best[0]):
                best = (m["fps"], name, det)
    assert best is not None
    args.results = results
    args.best = best


async def ratio_runs(args: argparse.Namespace, base_url: str, jpegs: list[bytes]) -> dict[str, Any]:
    """Pipeline vs limit measured back to back in each repetition (the host's load drifts), and
    the CPU each visit costs: that ratio does not depend on what else runs on the machine."""
    model = Path(args.model)
    _, name, det = args.best
    node = await build_node(model, base_url, len(jpegs), det, SourceSettings())
    full = await build_node(model, base_url, len(jpegs), det, SourceSettings(reduced_decode=False))
    reps, frames = (1, 60) if args.quick else (5, 160)
    ratios, limits, pipes, pipes_full, cpu_ms = [], [], [], [], []
    for _ in range(reps):
        # the limit of this repetition: the best thread layout of the bare compute chain right now
        limit = max(
            compute_chain(model, jpegs, sessions=s, threads=t, frames=frames, reduced=True)[0]
            for s, t in ((1, 1), (1, 2), (2, 1))
        )
        run = await closed_loop(node, frames, args.concurrency, args.cameras)
        pipes_full.append((await closed_loop(full, frames, args.concurrency, args.cameras))["fps"])
        limits.append(limit)
        pipes.append(run["fps"])
        ratios.append(run["fps"] / limit)
        cpu_ms.append(run["cpu_cores_used"] * 1e3 / run["fps"])
    await close_node(full)
    source = node.client.source("cam-fetch", f"{base_url}/snap/0.jpg", username=USER, password=PASSWORD)
    await source.read()
    cpu0 = cpu_seconds()
    for _ in range(100):
        await source.read()
    read_ms = (cpu_seconds() - cpu0) * 10
    await close_node(node)
    pipeline_ms = statistics.median(cpu_ms)
    return {
        "fps": round(statistics.median(pipes), 1),
        "limit_fps": round(statistics.median(limits), 1),
        "ratio_to_limit": round(statistics.median(ratios), 3),
        "ratios": [round(r, 3) for r in ratios],
        "fps_full_decode": round(statistics.median(pipes_full), 1),
        "config": name,
        "cpu_ms_per_frame": {
            "pipeline": round(pipeline_ms, 2),
            "compute_chain": round(args.chain_cpu_ms, 2),
            "snapshot_read_http_digest_decode": round(read_ms, 2),
            "quality_rules_evidence_asyncio_rest": round(
                pipeline_ms - args.chain_cpu_ms - (read_ms - args.decode_ms), 2
            ),
        },
        "cpu_efficiency": round(args.chain_cpu_ms / pipeline_ms, 3),
    }


async def latency_run(args: argparse.Namespace, base_url: str, n_jpegs: int, capacity_fps: float) -> dict[str, float]:
    _, _, det = args.best
    rate = min(TARGET_CAMERAS / 60.0, 0.9 * capacity_fps)
    node = await build_node(Path(args.model), base_url, n_jpegs, det, SourceSettings())
    seconds = 6.0 if args.quick else 20.0
    runs = [await open_loop(node, rate, seconds, args.cameras, args.concurrency) for _ in range(1 if args.quick else 3)]
    await close_node(node)
    return median_of(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(SHARED / "models" / "yolox_nano.onnx"))
    parser.add_argument("--jpegs", type=int, default=24, help="distinct 1920x1080 snapshots")
    parser.add_argument("--cameras", type=int, default=500, help="camera ids the visits cycle over")
    parser.add_argument("--concurrency", type=int, default=16, help="visits in flight in the closed loop")
    parser.add_argument("--quick", action="store_true", help="one short repetition of everything")
    parser.add_argument("--serve", nargs=2, metavar=("DIR", "PORT_FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), Path(args.serve[1]))
        return
    import logging
    import tempfile

    logging.basicConfig(level=logging.WARNING)
    model = Path(args.model)
    emit(
        figure="host", cores=os.cpu_count(), usable_cores=len(os.sched_getaffinity(0)),
        loadavg=[round(x, 2) for x in os.getloadavg()], model=model.name, cv2_threads=cv2.getNumThreads(),
    )  # fmt: skip
    jpegs = make_jpegs(args.jpegs)
    emit(figure="frames", count=len(jpegs), size="1920x1080", mean_jpeg_bytes=int(np.mean([len(j) for j in jpegs])))

    # (a) the limit: every layout once here (the table); the ratio below re-measures it per repetition
    reps, frames = (1, 60) if args.quick else (1, 160)
    chains: dict[tuple[str, bool], float] = {}
    chain_cpu: dict[tuple[str, bool], float] = {}
    for label, sessions, threads in (("1x1", 1, 1), ("1x2", 1, 2), ("2x1", 2, 1)):
        for reduced in (True, False):
            runs = [compute_chain(model, jpegs, sessions=sessions, threads=threads, frames=frames, reduced=reduced)
                    for _ in range(reps)]  # fmt: skip
            chains[(label, reduced)] = statistics.median(r[0] for r in runs)
            chain_cpu[(label, reduced)] = statistics.median(r[1] for r in runs)
    where = stage_times(model, jpegs, True)
    args.decode_ms = where["jpeg_decode_ms"]
    limit = max(v for (_, reduced), v in chains.items() if reduced)
    args.chain_cpu_ms = chain_cpu[("1x1", True)]
    limit_full = max(v for (_, reduced), v in chains.items() if not reduced)
    emit(
        figure="limit", fps=round(limit, 1), fps_full_decode=round(limit_full, 1),
        configs={f"{k[0]} {'reduced' if k[1] else 'full'}": round(v, 1) for k, v in chains.items()},
        cpu_ms_per_frame={f"{k[0]} {'reduced' if k[1] else 'full'}": round(v, 2) for k, v in chain_cpu.items()},
        where_reduced=where, where_full=stage_times(model, jpegs, False),
    )  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for i, data in enumerate(jpegs):
            (folder / f"{i}.jpg").write_bytes(data)
        port_file = folder / "port"
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(folder), str(port_file)])
        try:
            deadline = time.monotonic() + 20
            while not port_file.exists() or not port_file.read_text():
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("snapshot server did not start")
                time.sleep(0.05)
            base_url = f"http://127.0.0.1:{port_file.read_text()}"
            asyncio.run(node_runs(args, base_url, len(jpegs), server.pid))
            ratio = asyncio.run(ratio_runs(args, base_url, jpegs))
            fps, full = ratio["fps"], ratio["fps_full_decode"]
            emit(figure="pipeline", **ratio, target_ratio=0.9, mode=args.mode)
            emit(
                figure="capacity", cameras_reduced_decode=int(fps * 60), cameras_full_decode=int(full * 60),
                target=TARGET_CAMERAS, at="1 frame/camera/minute, 1920x1080 JPEG snapshots over HTTP + digest",
            )  # fmt: skip
            lat = asyncio.run(latency_run(args, base_url, len(jpegs), fps))
            emit(figure="latency", **lat, what="due time -> anomalies (or detections) returned")
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
