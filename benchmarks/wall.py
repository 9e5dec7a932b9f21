"""Live wall: first picture for a new viewer, glass-to-glass latency, gateway CPU per viewer, capacity.

Three processes inside a private network namespace (WebRTC needs a non-loopback address; see
``tests/wall/netns.py``): the camera simulator (CLI), the gateway (uvicorn, this script with
``--gateway``), and this process with aiortc viewers speaking WHEP.

- **first frame**: a new viewer of a camera that is already streaming: time from creating the offer
  to the first decoded picture (ICE + DTLS + the keyframe cache replay + decode), and the part
  after the peer connection is up. Cold starts (no upstream yet) for comparison.
- **glass-to-glass**: the simulator stamps every access unit with its send time (wall-clock SEI,
  ``read_wallclock_sei``); the relay passes it through untouched; the viewer reads it from the
  depacketized frame and compares with the time the frame is decoded. Same machine, same clock.
- **capacity**: viewers that depacketize and count frames without decoding (so the client side stays
  cheap) are added in steps; per step the gateway's CPU (from /proc), each viewer's frame rate
  against the source's, and packet loss. CPU per viewer is the slope of gateway CPU over viewers.

Prints one JSON line. ``.venv/bin/python benchmarks/wall.py [--max-viewers 128] [--window 6]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import queue
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import av  # noqa: E402
import httpx  # noqa: E402
from aiortc import RTCPeerConnection, RTCSessionDescription, rtcrtpreceiver  # noqa: E402
from aiortc.codecs import get_decoder  # noqa: E402

from tests.simulator.cli_process import SimulatorProcess  # noqa: E402
from tests.wall.netns import NETNS_ENV, in_netns, netns_argv, netns_problem  # noqa: E402
from xueliang.api.wall import h264  # noqa: E402
from xueliang.connectors.onvif.simulator import SimulatorConfig, read_wallclock_sei  # noqa: E402

CAMERA_PASSWORD = "Bench-Passw0rd-1"
OPERATOR_PASSWORD = "bench-operator-pass-1"
CAMERAS = 4
SOURCE_FPS: int = SimulatorConfig.model_fields["main_fps"].default  # the main stream (channel 101) the CLI serves
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": round(pct(values, 0.5), 1),
        "p95": round(pct(values, 0.95), 1),
        "max": round(max(values), 1) if values else float("nan"),
    }


# --- the gateway process ---------------------------------------------------------------------------


async def serve_gateway(data_dir: Path, sim_http: int, sim_rtsp: int) -> None:
    import uvicorn

    from tests.conftest import free_port
    from xueliang.api.app import create_app
    from xueliang.api.wall.upstream import Upstream
    from xueliang.gateway.models import CameraRecord, CameraStatus, Role, StreamProfile, User
    from xueliang.gateway.node import Node
    from xueliang.gateway.settings_loading import load_settings

    relay_latency_ms: list[float] = []
    on_unit = Upstream._on_unit

    def timed_on_unit(self: Upstream, session: int, data: bytes, pts: int, keyframe: bool, received_at: float) -> None:
        stamp = sei_time_us(data)
        # The first 2 s of a session are what FFmpeg buffered while probing the stream: not live.
        if stamp is not None and self.counters.frames >= 2 * SOURCE_FPS and len(relay_latency_ms) < 1_000_000:
            relay_latency_ms.append((time.time() - stamp / 1e6) * 1000)
        on_unit(self, session, data, pts, keyframe, received_at)

    Upstream._on_unit = timed_on_unit  # type: ignore[method-assign]  # benchmark instrumentation

    port = free_port()
    settings = load_settings(
        environ={}, environment="development", node={"data_dir": str(data_dir)}, http={"port": port},
        logging={"level": "WARNING"},
    )  # fmt: skip
    nodes: list[Node] = []
    app = create_app(settings, announce=lambda node, created: nodes.append(node))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    # uvicorn re-raises the SIGTERM it handled once it has shut down: keep the process for the report.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110  (uvicorn offers no event for it)
        await asyncio.sleep(0.05)
    node = nodes[0]
    app.state.wall.settings.max_sessions_per_user = 100_000  # every benchmark viewer is one user
    await node.stores.users.add_user(
        User(username="bench", password_hash=await node.passwords.hash(OPERATOR_PASSWORD), role=Role.OPERATOR)
    )
    for index in range(CAMERAS):
        address = f"127.1.0.{index + 1}"
        uri = f"rtsp://{address}:{sim_rtsp}/Streaming/Channels/101"
        await node.stores.cameras.upsert(
            CameraRecord(
                id=f"cam-{index}", name=f"bench-{index}", host=address, port=sim_http, username="admin",
                password_enc=node.cipher.encrypt(CAMERA_PASSWORD), status=CameraStatus.ONLINE,
                profiles=[StreamProfile(token="Profile_1", encoding="H264", stream_uri=uri)], live_profile="Profile_1",
            )
        )  # fmt: skip
    print(json.dumps({"url": f"http://127.0.0.1:{port}", "pid": os.getpid()}), flush=True)
    await task  # until SIGTERM
    print(json.dumps({"source_to_relay_ms": summary(relay_latency_ms)}), flush=True)


# --- viewers -----------------------------------------------------------------------------------


@dataclass
class Probe:
    """What one viewer saw, filled in by its receiver's decoder thread."""

    decode: bool
    frames: int = 0
    decoded: int = 0
    first_decoded_at: float = 0.0
    recv_latency_ms: list[float] = field(default_factory=list)
    decoded_latency_ms: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


PROBES: dict[int, Probe] = {}  # id(the track's frame queue) -> probe


def sei_time_us(data: bytes) -> int | None:
    for nal in h264.split_nals(data):
        if h264.nal_type(nal) == h264.NAL_SEI:
            stamp = read_wallclock_sei(nal)
            if stamp is not None:
                return stamp
    return None


def probing_decoder_worker(
    loop: asyncio.AbstractEventLoop, input_q: queue.Queue[Any], output_q: asyncio.Queue[Any], decode_error: Any
) -> None:
    """aiortc's decoder thread, instrumented: reads the SEI stamp; decodes only for decoding viewers."""
    del loop, decode_error
    decoder = None
    while (task := input_q.get()) is not None:
        codec, encoded = task
        probe = PROBES.get(id(output_q))
        if probe is None:
            continue
        stamp = sei_time_us(encoded.data)
        now = time.time()
        with probe.lock:
            probe.frames += 1
            if stamp is not None:
                probe.recv_latency_ms.append((now - stamp / 1e6) * 1000)
        if not probe.decode:
            continue
        if decoder is None:
            decoder = get_decoder(codec)
        try:
            pictures = decoder.decode(encoded)
        except av.FFmpegError:
            continue
        if pictures:
            done = time.time()
            with probe.lock:
                probe.decoded += len(pictures)
                if not probe.first_decoded_at:
                    probe.first_decoded_at = time.monotonic()
                if stamp is not None:
                    probe.decoded_latency_ms.append((done - stamp / 1e6) * 1000)


rtcrtpreceiver.decoder_worker = probing_decoder_worker  # type: ignore[assignment]


class Viewer:
    def __init__(self, base: str, token: str, camera: str, decode: bool) -> None:
        self.base, self.token, self.camera = base, token, camera
        self.probe = Probe(decode)
        self.pc = RTCPeerConnection()
        self.location = ""
        self.started = 0.0
        self.connected = 0.0

    async def start(self) -> None:
        pc = self.pc
        transceiver = pc.addTransceiver("video", direction="recvonly")

        @pc.on("connectionstatechange")
        def _state() -> None:
            if pc.connectionState == "connected" and not self.connected:
                self.connected = time.monotonic()

        self.started = time.monotonic()
        await pc.setLocalDescription(await pc.createOffer())
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as client:
            response = await client.post(
                f"/api/wall/whep/{self.camera}", content=pc.localDescription.sdp,
                headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {self.token}"},
            )  # fmt: skip
        response.raise_for_status()
        self.location = response.headers["location"]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
        PROBES[id(transceiver.receiver.track._queue)] = self.probe  # before any media: DTLS is not up yet

    async def stop(self) -> None:
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as client:
            await client.delete(self.location, headers={"Authorization": f"Bearer {self.token}"})
        await self.pc.close()

    async def lost(self) -> int:
        stats = await self.pc.getReceivers()[0].getStats()
        return sum(int(getattr(s, "packetsLost", 0) or 0) for s in stats.values())


async def until(predicate: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


async def first_frames(base: str, token: str, joins: int) -> dict[str, Any]:
    keeper = Viewer(base, token, "cam-0", decode=False)
    await keeper.start()
    await until(lambda: keeper.probe.frames > SOURCE_FPS * 2, 20)
    totals: list[float] = []
    after_connect: list[float] = []
    for _ in range(joins):
        await asyncio.sleep(random.uniform(0.1, 0.6))  # land at different points of the GOP
        viewer = Viewer(base, token, "cam-0", decode=True)
        await viewer.start()
        if await until(lambda v=viewer: v.probe.first_decoded_at > 0, 10):
            totals.append((viewer.probe.first_decoded_at - viewer.started) * 1000)
            after_connect.append((viewer.probe.first_decoded_at - viewer.connected) * 1000)
        await viewer.stop()
    cold: list[float] = []
    for camera in ("cam-1", "cam-2", "cam-3"):
        viewer = Viewer(base, token, camera, decode=True)
        await viewer.start()
        if await until(lambda v=viewer: v.probe.first_decoded_at > 0, 15):
            cold.append((viewer.probe.first_decoded_at - viewer.started) * 1000)
        await viewer.stop()
    await keeper.stop()
    return {
        "warm_offer_to_first_decoded_ms": summary(totals),
        "warm_connected_to_first_decoded_ms": summary(after_connect),
        "cold_offer_to_first_decoded_ms": summary(cold),
        "failed_joins": joins - len(totals),
    }


async def glass_to_glass(base: str, token: str, seconds: float) -> dict[str, Any]:
    viewers = [Viewer(base, token, f"cam-{i}", decode=True) for i in range(CAMERAS)]
    for viewer in viewers:
        await viewer.start()
    await until(lambda: all(v.probe.decoded > SOURCE_FPS for v in viewers), 30)
    for viewer in viewers:
        with viewer.probe.lock:
            viewer.probe.decoded_latency_ms.clear()
            viewer.probe.recv_latency_ms.clear()
    await asyncio.sleep(seconds)
    decoded = [ms for v in viewers for ms in v.probe.decoded_latency_ms]
    received = [ms for v in viewers for ms in v.probe.recv_latency_ms]
    for viewer in viewers:
        await viewer.stop()
    return {"source_to_decoded_ms": summary(decoded), "source_to_received_ms": summary(received), "viewers": CAMERAS}


async def capacity(base: str, token: str, gateway_pid: int, max_viewers: int, window: float) -> dict[str, Any]:
    steps = [n for n in (4, 8, 16, 32, 48, 64, 96, 128, 192, 256) if n <= max_viewers]
    viewers: list[Viewer] = []
    rows: list[dict[str, Any]] = []
    first_drop = None
    try:
        for target in steps:
            while len(viewers) < target:
                viewer = Viewer(base, token, f"cam-{len(viewers) % CAMERAS}", decode=False)
                await viewer.start()
                viewers.append(viewer)
            await until(lambda: all(v.probe.frames > 5 for v in viewers), 30)
            await asyncio.sleep(2.0)
            lost0 = [await v.lost() for v in viewers]
            frames0 = [v.probe.frames for v in viewers]
            for viewer in viewers:
                with viewer.probe.lock:
                    viewer.probe.recv_latency_ms.clear()
            cpu0, mine0, t0 = cpu_seconds(gateway_pid), time.process_time(), time.monotonic()
            await asyncio.sleep(window)
            elapsed = time.monotonic() - t0
            gateway_cpu = (cpu_seconds(gateway_pid) - cpu0) / elapsed * 100
            client_cpu = (time.process_time() - mine0) / elapsed * 100
            fps = [(v.probe.frames - f0) / elapsed for v, f0 in zip(viewers, frames0, strict=True)]
            lost = sum([await v.lost() for v in viewers]) - sum(lost0)
            latency = [ms for v in viewers for ms in v.probe.recv_latency_ms]
            row = {
                "viewers": target, "gateway_cpu_pct": round(gateway_cpu, 1), "client_cpu_pct": round(client_cpu, 1),
                "min_fps": round(min(fps), 1), "mean_fps": round(statistics.mean(fps), 1), "packets_lost": lost,
                "recv_latency_p95_ms": round(pct(latency, 0.95), 1), "loadavg": round(os.getloadavg()[0], 2),
            }  # fmt: skip
            rows.append(row)
            print(json.dumps({"step": row}), file=sys.stderr, flush=True)
            if first_drop is None and (min(fps) < 0.9 * SOURCE_FPS or lost > 0):
                first_drop = target
                break
    finally:
        for viewer in viewers:
            with contextlib.suppress(httpx.HTTPError):
                await viewer.stop()
    xs = [r["viewers"] for r in rows]
    ys = [r["gateway_cpu_pct"] for r in rows]
    slope = statistics.linear_regression(xs, ys).slope if len(rows) >= 2 else float("nan")
    served = [r["viewers"] for r in rows if r["viewers"] != first_drop]
    last = rows[-1] if rows else {}
    if first_drop is None:
        bound = f"no drops up to {max(served, default=0)} viewers (the ramp's end)"
    elif last.get("client_cpu_pct", 0) >= 90:
        bound = "the measuring client (one Python process receiving every stream) ran out of CPU first"
    elif last.get("gateway_cpu_pct", 0) >= 90:
        bound = "the gateway's event loop (one core: RTP packetizing + SRTP per viewer)"
    else:
        bound = "the machine (CPU shared with the client and other work): see loadavg"
    return {
        "steps": rows,
        "bound": bound,
        "gateway_cpu_pct_per_viewer": round(slope, 2),
        "viewers_without_drops": max(served) if served else 0,
        "first_step_with_drops": first_drop,
    }


async def inner(args: argparse.Namespace) -> dict[str, Any]:
    sim = SimulatorProcess(
        "--count", str(CAMERAS), "--rtsp-count", str(CAMERAS), "--password", CAMERA_PASSWORD, "--ptz-every", "0"
    )
    gateway: subprocess.Popen[str] | None = None
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            command = [sys.executable, __file__, "--gateway", data_dir, str(sim.info["http_port"]),
                       str(sim.info["rtsp_port"])]  # fmt: skip
            gateway = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: ASYNC220  (set-up, once)
            assert gateway.stdout is not None
            ready = json.loads(await asyncio.to_thread(gateway.stdout.readline))
            base, pid = ready["url"], int(ready["pid"])
            async with httpx.AsyncClient(base_url=base) as client:
                login = await client.post("/api/auth/login", json={"username": "bench", "password": OPERATOR_PASSWORD})
                token = login.json()["access_token"]
            source = f"768x576 H.264 {SOURCE_FPS} fps"
            result: dict[str, Any] = {"benchmark": "wall", "cpus": os.cpu_count(), "source": source}
            result["first_frame"] = await first_frames(base, token, args.joins)
            result["glass_to_glass"] = await glass_to_glass(base, token, args.window)
            result["capacity"] = await capacity(base, token, pid, args.max_viewers, args.window)
            result["loadavg_at_end"] = round(os.getloadavg()[0], 2)
            gateway.send_signal(signal.SIGTERM)
            result["relay"] = json.loads(await asyncio.to_thread(gateway.stdout.readline) or "{}")
            return result
    finally:
        if gateway is not None and gateway.poll() is None:
            gateway.send_signal(signal.SIGTERM)
        if gateway is not None:
            gateway.wait(30)
        sim.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-viewers", type=int, default=192, help="stop the capacity ramp here")
    parser.add_argument("--window", type=float, default=6.0, help="seconds measured per step")
    parser.add_argument("--joins", type=int, default=15, help="new viewers timed on a running camera")
    parser.add_argument("--gateway", nargs=3, metavar=("DATA_DIR", "SIM_HTTP", "SIM_RTSP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.gateway:
        asyncio.run(serve_gateway(Path(args.gateway[0]), int(args.gateway[1]), int(args.gateway[2])))
        return 0
    if not in_netns():
        problem = netns_problem()
        if problem:
            print(json.dumps({"benchmark": "wall", "error": problem}))
            return 1
        env = {**os.environ, NETNS_ENV: "1"}
        return subprocess.run(netns_argv([sys.executable, __file__, *sys.argv[1:]]), env=env, check=False).returncode
    print(json.dumps(asyncio.run(inner(args))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
