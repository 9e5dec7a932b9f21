"""The patrol's view of the registry: targets without credentials, credentials kept in the node,
URIs outside the allowed networks never used, the quality-only fallback without a model."""

from __future__ import annotations

from pathlib import Path

import pytest

from xueliang.gateway.casework import CaseWork
from xueliang.gateway.models import CameraRecord, CameraStatus, StreamProfile
from xueliang.gateway.node import open_node
from xueliang.gateway.patrol import Patrol, QualityOnly, with_credentials
from xueliang.gateway.settings_loading import load_settings
from xueliang.inference.errors import SourceUnavailable
from xueliang.inference.patrol.models import PatrolJob


def camera(node_cipher_encrypt: object, cid: str, host: str, snapshot: str, stream: str) -> CameraRecord:
    assert callable(node_cipher_encrypt)
    return CameraRecord(
        id=cid,
        name=cid,
        host=host,
        username="admin",
        password_enc=node_cipher_encrypt("s3cret!"),
        profiles=[StreamProfile(token="sub", stream_uri=stream, snapshot_uri=snapshot)],
        analysis_profile="sub",
        status=CameraStatus.ONLINE,
    )


async def test_targets_carry_no_password_and_refuse_uris_outside_allowed_networks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(
        environ={},
        environment="development",
        node={"data_dir": str(tmp_path)},
        detector={"model_path": str(tmp_path / "missing.onnx")},
    )
    async with open_node(settings) as node:
        enc = node.cipher.encrypt
        await node.stores.cameras.upsert(
            camera(enc, "ok", "127.1.0.9", "http://127.1.0.9/snap.jpg", "rtsp://127.1.0.9/101")
        )
        await node.stores.cameras.upsert(
            camera(enc, "far", "127.1.0.10", "http://10.9.9.9/snap.jpg", "rtsp://10.9.9.9/101")
        )
        cases = CaseWork(node, settings.events)
        patrol = Patrol(node, cases, settings.detector, settings.sources, settings.analytics)
        await patrol.start()
        try:
            assert isinstance(patrol.detector, QualityOnly)
            assert "running the video quality checks only" in caplog.text and "missing.onnx" in caplog.text
            targets = {t.camera_id: t for t in await patrol.targets()}
            assert targets["ok"].snapshot_url == "http://127.1.0.9/snap.jpg" and targets["ok"].enabled
            assert (targets["far"].snapshot_url, targets["far"].stream_url, targets["far"].enabled) == ("", "", False)
            assert "not connecting to 10.9.9.9" in caplog.text
            assert "s3cret" not in repr(list(targets.values())) and "s3cret" not in caplog.text
            assert all(t.credentials.username == "" for t in targets.values())
            # a job for a camera with no usable URI is a source failure the patrol counts, not a bug
            bare = PatrolJob(camera_id="far", due_at=0.0, queued_at=0.0, interval_s=60.0, priority=3)
            with pytest.raises(SourceUnavailable, match="camera far has neither a snapshot nor a stream URI: re-probe"):
                patrol.source_for_job(bare)
            reads = 0
            original = node.stores.cameras.list

            async def counting(query):  # type: ignore[no-untyped-def]
                nonlocal reads
                reads += 1
                return await original(query)

            node.stores.cameras.list = counting  # type: ignore[method-assign]
            assert [t.camera_id for t in await patrol.recent_targets(60.0)] == ["far", "ok"]
            assert reads == 0  # the scheduler's read a moment ago is reused
            await patrol.recent_targets(0.0)
            assert reads == 1  # too old: read again
            assert patrol._login("ok") is not None and patrol._login("ok").password == "s3cret!"  # type: ignore[union-attr]
        finally:
            await patrol.close()


def test_rtsp_credentials_are_url_encoded() -> None:
    from xueliang.gateway.patrol import Login

    url = with_credentials("rtsp://127.1.0.2:554/Streaming/Channels/102", Login("admin", "p@ss:w/rd"))
    assert url == "rtsp://admin:p%40ss%3Aw%2Frd@127.1.0.2:554/Streaming/Channels/102"
    assert with_credentials("rtsp://h/x", None) == "rtsp://h/x"
    # the address as written: IPv6 brackets and the port kept, credentials already in the URL replaced
    login = Login("admin", "pw")
    assert with_credentials("rtsp://[fd00::12]:8554/live", login) == "rtsp://admin:pw@[fd00::12]:8554/live"
    assert with_credentials("rtsp://old:creds@10.0.0.5/live", login) == "rtsp://admin:pw@10.0.0.5/live"
    assert with_credentials("rtsp://[fd00::12/live", login) == "rtsp://[fd00::12/live"  # refused on read, not here
