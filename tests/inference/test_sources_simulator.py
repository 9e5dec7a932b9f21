"""Snapshots from the camera simulator (digest auth, 1920x1080 JPEGs of the real footage) into the detector."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.inference.clip_match import assert_people_as_on_the_clip
from xueliang.connectors.onvif.simulator import CameraSimulator, SimulatorConfig
from xueliang.inference.detector import Detector
from xueliang.inference.errors import SourceAuthFailed, SourceTimeout, SourceUnavailable
from xueliang.inference.settings import DetectorSettings, SourceSettings
from xueliang.inference.sources import SnapshotClient, SnapshotSource

SNAPSHOT_PATH = "/onvif/snapshot/1.jpg"  # the simulator's GetSnapshotUri answer


@pytest.fixture
async def simulator(vtest_path: Path) -> AsyncIterator[CameraSimulator]:
    config = SimulatorConfig(count=4, rtsp_count=0, video=vtest_path, snapshot_size=(1920, 1080))
    async with CameraSimulator(config) as sim:
        yield sim


def snapshot_url(sim: CameraSimulator, index: int) -> str:
    return f"http://{sim.cameras[index].address}:{sim.http_port}{SNAPSHOT_PATH}"


async def test_patrol_snapshots_from_many_cameras_find_people(simulator: CameraSimulator, models_dir: Path) -> None:
    cfg = simulator.config
    async with (
        Detector(DetectorSettings(model_path=models_dir / "yolox_nano.onnx")) as detector,
        SnapshotClient(SourceSettings(snapshot_timeout_s=5.0), target_size=detector.input_size) as client,
    ):
        sources = [
            client.source(f"sim-{i}", snapshot_url(simulator, i), username=cfg.username, password=cfg.password)
            for i in range(4)
        ]
        frames = [await s.read() for s in sources]
        results = await detector.detect_many(frames, classes=frozenset({"person"}), min_score=0.5)
        people = [d for d in results if isinstance(d, list)]
        assert len(people) == 4, results
        assert max(len(p) for p in people) >= 2, people  # the campus path always has walkers on it
        # each snapshot is a frame of the footage (stretched to 16:9, JPEG, decoded at 1/4), and the
        # detector finds the people it finds on that clip frame at that size
        assert_people_as_on_the_clip(frames, people, detector, min_score=0.5)
    for frame in frames:
        assert frame.image.shape == (270, 480, 3) and frame.scale == 0.25 and frame.jpeg
    assert client.stats().frames == 4 and client.stats().corrupt == 0


async def test_simulated_faults_map_to_source_errors(simulator: CameraSimulator) -> None:
    cfg = simulator.config
    simulator.cameras[1].faults.wrong_password = True
    simulator.cameras[2].faults.timeout = True
    simulator.cameras[3].faults.no_snapshot = True
    # the simulator's first picture of a camera opens and encodes the video (up to ~0.5 s on a busy
    # host): take it with the default timeout, so that the short one below only meets the faults
    async with SnapshotClient(SourceSettings()) as warm:
        await warm.source("sim-0", snapshot_url(simulator, 0), username=cfg.username, password=cfg.password).read()
    settings = SourceSettings(snapshot_timeout_s=0.5, snapshot_connect_timeout_s=0.5)
    async with SnapshotClient(settings) as client:

        def source(i: int) -> SnapshotSource:
            return client.source(f"sim-{i}", snapshot_url(simulator, i), username=cfg.username, password=cfg.password)

        with pytest.raises(SourceAuthFailed, match=r"camera sim-1: .*refused the credentials"):
            await source(1).read()
        with pytest.raises(SourceTimeout, match=r"camera sim-2: .*no complete answer within 0\.5 s"):
            await source(2).read()
        with pytest.raises(SourceUnavailable, match=r"camera sim-3: .*HTTP 404"):
            await source(3).read()
        assert (await source(0).read()).image.shape == (1080, 1920, 3)
    assert client.stats().errors == 3
