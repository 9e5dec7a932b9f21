"""Bulk import of ~200 simulated cameras, some broken on purpose: each row's status and reason in
the result file, re-running never duplicates, resuming skips what was done, XLSX works too."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from openpyxl import Workbook

from xueliang.connectors.onvif.simulator import CameraSimulator
from xueliang.gateway.cameras.bulk import BulkImport
from xueliang.gateway.cameras.importer import parse_camera_file
from xueliang.gateway.cameras.models import ImportProgress, fingerprint_key
from xueliang.gateway.cameras.results import COLUMNS, read_results
from xueliang.gateway.cameras.service import CameraService
from xueliang.gateway.models import CameraQuery
from xueliang.gateway.node import open_node
from xueliang.gateway.security import resolve_secrets

from .conftest import SIM_PASSWORD, node_settings

COUNT = 200
HEADER = "点位编号,设备名称,IP地址,端口,用户名,密码,行政区划代码,乡镇街道,网格编码,场所类型,巡查优先级\n"
BROKEN = {
    10: ("wrong_password", True),
    20: ("offline", True),
    30: ("clock_skew_s", 7200.0),
    40: ("malformed_xml", True),
    50: ("no_get_services", True),
    60: ("no_snapshot", True),
    70: ("timeout", True),
}


def camera_list(sim: CameraSimulator, names: dict[int, str] | None = None) -> str:
    names = names or {}
    lines = [HEADER]
    for camera in sim.cameras:
        region = "511902" if camera.index % 2 else "511903"
        name = names.get(camera.index, f"点位{camera.index:03d}")
        lines.append(
            f"P{camera.index:05d},{name},{camera.address},{sim.http_port},admin,{SIM_PASSWORD},{region},"
            f"街道{camera.index % 5},{region}001{camera.index % 9:03d},道路,3\n"
        )
    lines.append(f"P99999,界外,127.9.0.1,{sim.http_port},admin,x,511902,,,道路,3\n")  # outside the networks
    lines.append("P99998,坏端口,127.1.0.250,http,admin,x,511902,,,道路,3\n")  # unreadable port
    lines.append(f"P99997,重复,{sim.cameras[5].address},{sim.http_port},admin,x,511902,,,道路,3\n")  # duplicate
    return "".join(lines)


@pytest.fixture
async def big_sim(start_sim) -> CameraSimulator:  # type: ignore[no-untyped-def]
    sim: CameraSimulator = await start_sim(count=COUNT, ptz_every=10)
    for index, (fault, value) in BROKEN.items():
        setattr(sim.cameras[index].faults, fault, value)
    return sim


def rows_of(path: Path) -> dict[int, tuple[str, str]]:
    return {r.row: (r.status, r.reason) for r in read_results(path)}


async def test_bulk_import_statuses_reasons_rerun_and_resume(
    big_sim: CameraSimulator, service: CameraService, tmp_path: Path
) -> None:
    source = tmp_path / "摄像机清单.csv"
    source.write_bytes(camera_list(big_sim).encode("utf-8-sig"))
    seen: list[ImportProgress] = []
    done: list[int] = []

    def progress(current: ImportProgress) -> None:
        seen.append(current)
        done.append(current.done)

    report = await BulkImport(service, actor="tech", concurrency=32, on_progress=progress).run(source)

    result_path = tmp_path / "摄像机清单.result.csv"
    assert report.result_path == result_path
    raw = result_path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel opens Chinese right
    assert raw[3:].decode().splitlines()[0] == ",".join(COLUMNS)
    rows = rows_of(result_path)
    assert len(rows) == COUNT + 3 and sorted(rows) == list(range(2, COUNT + 5))

    def row(index: int) -> tuple[str, str]:
        return rows[index + 2]  # header is line 1, camera 0 is line 2

    assert row(10)[0] == "auth_failed" and "refused the username or password" in row(10)[1]
    assert row(20)[0] == "offline" and "Camera unreachable" in row(20)[1]
    assert row(30)[0] == "online" and "NTP" in row(30)[1]  # clock skew handled: signed with the offset
    assert row(40)[0] == "degraded" and "broken answer" in row(40)[1]
    assert row(50)[0] == "online" and "GetCapabilities" in row(50)[1]  # GetServices fallback
    assert row(60)[0] == "online" and "no snapshot URI" in row(60)[1]
    assert row(70)[0] == "offline" and "did not answer in time" in row(70)[1]
    outside, bad_port, duplicate = rows[COUNT + 2], rows[COUNT + 3], rows[COUNT + 4]
    assert outside[0] == "refused" and "127.9.0.1 is outside the allowed networks" in outside[1]
    assert bad_port[0] == "invalid" and bad_port[1].startswith("port:")
    assert duplicate[0] == "invalid" and "same address as row 7" in duplicate[1]
    healthy = [i for i in range(COUNT) if i not in BROKEN or i in (30, 50, 60)]
    assert all(row(i) == ("online", row(i)[1]) for i in healthy)

    final = seen[-1]
    assert (final.done, final.total, final.ok, final.failed) == (COUNT + 3, COUNT + 3, len(healthy), 7)
    assert done == [*range(1, COUNT + 4), COUNT + 3]  # after each row, and once at the end
    assert final.rate > 0 and final.eta_s == 0.0

    registered = await service.list(CameraQuery(limit=1000))
    assert len(registered) == COUNT  # refused/invalid rows register nothing
    by_host = {c.host: c for c in registered}
    assert by_host[big_sim.cameras[7].address].location.region_code == "511902"
    assert by_host[big_sim.cameras[8].address].id == "P00008"
    assert by_host[big_sim.cameras[20].address].status.value == "offline"  # registered anyway

    # Re-running the same list updates, never duplicates, and keeps the ids.
    for index, (fault, _value) in BROKEN.items():
        setattr(big_sim.cameras[index].faults, fault, type(getattr(big_sim.cameras[index].faults, fault))())
    rerun_path = tmp_path / "rerun.csv"
    rerun = await BulkImport(service, actor="tech", concurrency=32).run(source, rerun_path)
    assert await service.count(CameraQuery()) == COUNT
    assert {c.host: c.id for c in await service.list(CameraQuery(limit=1000))} == {h: c.id for h, c in by_host.items()}
    assert rerun.progress.ok == COUNT

    # Resuming from the first result file: only rows that were not done, or changed since, run again.
    source.write_bytes(camera_list(big_sim, names={3: "改名点位"}).encode("utf-8-sig"))
    resumed = await BulkImport(service, actor="tech", concurrency=32).run(
        source, tmp_path / "resumed.csv", resume=result_path
    )
    statuses = rows_of(tmp_path / "resumed.csv")
    skipped = [r for r, (status, _reason) in statuses.items() if status == "skipped"]
    redone = {r - 2 for r, (status, _reason) in statuses.items() if status == "online"}
    assert redone == {3, 10, 20, 40, 70}  # renamed row + the ones that had failed (now healthy)
    assert len(skipped) == len(healthy) - 1
    assert resumed.progress.skipped == len(skipped) and resumed.progress.failed == 3
    assert (await service.get("P00003")).name == "改名点位"
    assert await service.count(CameraQuery()) == COUNT


async def test_xlsx_camera_list(sim: CameraSimulator, service: CameraService, tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["名称", "IP", "端口", "用户名", "密码", "区划代码", "类别", "优先级"])
    for camera in sim.cameras[:4]:
        sheet.append([f"表格{camera.index}", camera.address, sim.http_port, "admin", SIM_PASSWORD, 511903, "学校", 1])
    sheet.append(["坏行", "127.1.0.200", 70000, "admin", "x", 511903, "学校", 1])
    path = tmp_path / "cams.xlsx"
    book.save(path)

    report = await BulkImport(service, actor="tech").run(path)
    assert [(r.name, r.status) for r in report.results] == [
        ("表格0", "online"),
        ("表格1", "online"),
        ("表格2", "online"),
        ("表格3", "online"),
        ("坏行", "invalid"),
    ]
    assert report.results[-1].reason.startswith("port:")
    cameras = await service.list(CameraQuery(category="school"))
    assert len(cameras) == 4 and {c.policy.priority for c in cameras} == {1}
    assert {c.location.region_code for c in cameras} == {"511903"}


async def test_an_interrupted_import_resumes_where_it_stopped(
    start_sim,
    service: CameraService,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    sim: CameraSimulator = await start_sim(count=60)
    source = tmp_path / "cams.csv"
    source.write_text(camera_list(sim), encoding="utf-8-sig")
    result_path = tmp_path / "cams.result.csv"

    def stop_midway(current: ImportProgress) -> None:
        if current.done == 25:
            task.cancel()  # the technician pressed Ctrl-C

    importer = BulkImport(service, actor="tech", concurrency=4, on_progress=stop_midway)
    task = asyncio.create_task(importer.run(source, result_path))
    with pytest.raises(asyncio.CancelledError):
        await task
    partial = read_results(result_path)
    assert 25 <= len(partial) < 63
    done_before = {r.row for r in partial if r.status == "online"}

    report = await BulkImport(service, actor="tech", concurrency=4).run(source, result_path, resume=result_path)
    statuses = {r.row: r.status for r in report.results}
    assert {row for row, status in statuses.items() if status == "skipped"} == done_before
    assert sum(1 for status in statuses.values() if status in ("online", "skipped")) == 60
    assert rows_of(result_path) == {r.row: (r.status, r.reason) for r in report.results}
    assert await service.count(CameraQuery()) == 60


async def test_result_file_fingerprints_are_keyed_and_resume_still_skips(
    sim: CameraSimulator, service: CameraService, tmp_path: Path
) -> None:
    source = tmp_path / "cams.csv"
    source.write_text(camera_list(sim), encoding="utf-8-sig")
    result_path = tmp_path / "cams.result.csv"
    await BulkImport(service, actor="tech", concurrency=8).run(source, result_path)
    written = {r.row: r.fingerprint for r in read_results(result_path) if r.status == "online"}
    assert len(written) == len(sim.cameras)

    key = fingerprint_key(resolve_secrets(service.node.settings).token_secret)
    for row in parse_camera_file(source).rows:
        if row.row in written:
            assert written[row.row] == row.fingerprint(key)
            # Knowing the password (or guessing it) does not reproduce the fingerprint without the key.
            assert row.password == SIM_PASSWORD
            plain = hashlib.sha256(row.model_dump_json(exclude={"row"}).encode()).hexdigest()
            assert plain[:16] not in written[row.row] and plain[:32] != written[row.row]

    resumed = await BulkImport(service, actor="tech").run(source, tmp_path / "again.csv", resume=result_path)
    assert {r.row for r in resumed.results if r.status == "skipped"} == set(written)

    # Another deployment (another secret) recognises nothing in this file: every camera is provisioned.
    async with open_node(node_settings(tmp_path / "other")) as other, CameraService(other) as elsewhere:
        fresh = await BulkImport(elsewhere, actor="tech").run(source, tmp_path / "other.csv", resume=result_path)
    assert not [r for r in fresh.results if r.status == "skipped"]
    assert {r.row for r in fresh.results if r.status == "online"} == set(written)
