"""The cameras API over real HTTP (uvicorn, both deployments) against the real simulator: roles,
list/filter/search/paging, get, add, update, delete, re-probe, bulk import jobs, export, errors;
no password in any response or log line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from openpyxl import Workbook

from tests.api.conftest import RunningGateway, add_user, deployment, serving
from tests.conftest import free_port
from xueliang.connectors.onvif.simulator import CameraSimulator
from xueliang.gateway.models import Role

from .conftest import SIM_PASSWORD, node_settings
from .damaged import truncated_sheet, unclosed_quote_csv

WRONG_PASSWORD = "Wr0ng-Secret-77"


@pytest.fixture(params=["embedded", "scaleout"])
async def gateway(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    settings = node_settings(
        tmp_path, http={"port": free_port()}, cameras={"sweep": {"enabled": False}}, **deployment(request)
    )
    async with serving(settings) as running:
        yield running


async def login_as(gw: RunningGateway, username: str, role: Role) -> httpx.AsyncClient:
    return gw.client(await add_user(gw, username, role))


def body(sim: CameraSimulator, index: int, **extra: object) -> dict[str, object]:
    return {
        "host": sim.cameras[index].address,
        "port": sim.http_port,
        "username": "admin",
        "password": SIM_PASSWORD,
        "name": f"摄像机{index}",
        **extra,
    }


def location(region: str, township: str, grid: str) -> dict[str, str]:
    return {"region_code": region, "township": township, "grid_code": grid, "address": f"{township}路口"}


async def test_cameras_api_roles_crud_filters_and_no_password_anywhere(
    gateway: RunningGateway, sim: CameraSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    tech = await login_as(gateway, "tech1", Role.TECHNICIAN)
    operator = await login_as(gateway, "op1", Role.OPERATOR)
    async with tech, operator:
        added = []
        for index, (region, township, grid, category) in enumerate(
            [
                ("511902", "东城街道", "511902001001", "square"),
                ("511902", "西城街道", "511902002001", "school"),
                ("511903", "登科街道", "511903001001", "road"),
                ("511903", "登科街道", "511903001002", "road"),
            ]
        ):
            response = await tech.post(
                "/api/cameras", json=body(sim, index, location=location(region, township, grid), category=category)
            )
            texts.append(response.text)
            assert response.status_code == 201, response.text
            added.append(response.json())
        first = added[0]
        assert first["status"] == "online" and first["has_password"] is True
        assert "password" not in first and "password_enc" not in first
        assert first["analysis_profile"] == "Profile_2" and len(first["profiles"]) == 2

        # Operators read; they may not write.
        listing = await operator.get("/api/cameras", params={"region": "511903"})
        texts.append(listing.text)
        assert listing.status_code == 200
        assert listing.json()["total"] == 2 and {c["location"]["grid_code"] for c in listing.json()["items"]} == {
            "511903001001",
            "511903001002",
        }
        for method, path, payload in [
            ("POST", "/api/cameras", body(sim, 5)),
            ("PATCH", f"/api/cameras/{first['id']}", {"name": "x"}),
            ("DELETE", f"/api/cameras/{first['id']}", None),
            ("POST", f"/api/cameras/{first['id']}/reprobe", None),
            ("POST", "/api/cameras/imports?filename=a.csv", None),
        ]:
            refused = await operator.request(method, path, json=payload)
            assert refused.status_code == 403, (method, path, refused.text)

        async def ids(**params: object) -> list[str]:
            response = await operator.get("/api/cameras", params=params)
            texts.append(response.text)
            return [c["id"] for c in response.json()["items"]]

        assert await ids(township="登科街道") == sorted(a["id"] for a in added[2:])
        assert await ids(grid="511902002001") == [added[1]["id"]]
        assert await ids(category="square") == [added[0]["id"]]
        assert await ids(q="摄像机3") == [added[3]["id"]]
        assert await ids(q=sim.cameras[1].address) == [added[1]["id"]]
        assert await ids(status="online") == sorted(a["id"] for a in added)
        assert len(await ids(limit=3)) == 3 and len(await ids(limit=3, offset=3)) == 1
        bad_filter = await operator.get("/api/cameras", params={"status": "sleeping"})
        assert bad_filter.status_code == 422 and bad_filter.json()["detail"][0]["loc"] == ["query", "status"]

        one = await operator.get(f"/api/cameras/{added[2]['id']}")
        assert one.status_code == 200 and one.json()["name"] == "摄像机2"
        assert (await operator.get("/api/cameras/no-such-camera")).status_code == 404
        summary = (await operator.get("/api/cameras/summary")).json()
        assert summary["total"] == 4 and summary["by_status"]["online"] == 4

        # Technicians change, re-probe, delete.
        changed = await tech.patch(
            f"/api/cameras/{first['id']}",
            json={
                "name": "广场东",
                "location": location("511902", "东城街道", "511902001009"),
                "policy": {"priority": 1},
            },
        )
        texts.append(changed.text)
        assert changed.status_code == 200
        assert (changed.json()["name"], changed.json()["location"]["grid_code"]) == ("广场东", "511902001009")
        assert changed.json()["policy"]["priority"] == 1
        wrong = await tech.patch(f"/api/cameras/{first['id']}", json={"password": WRONG_PASSWORD})
        texts.append(wrong.text)
        assert wrong.json()["status"] == "auth_failed" and "username or password" in wrong.json()["last_error"]
        fixed = await tech.patch(f"/api/cameras/{first['id']}", json={"password": SIM_PASSWORD})
        assert fixed.json()["status"] == "online"
        sim.cameras[1].faults.offline = True
        reprobed = await tech.post(f"/api/cameras/{added[1]['id']}/reprobe")
        texts.append(reprobed.text)
        assert reprobed.status_code == 200 and reprobed.json()["status"] == "offline"
        assert (await tech.delete(f"/api/cameras/{added[3]['id']}")).status_code == 204
        assert (await tech.get(f"/api/cameras/{added[3]['id']}")).status_code == 404

        # Bad requests: 422 with the field path; the guard's message; a clash is 409.
        invalid = await tech.post("/api/cameras", json=body(sim, 6, port=70000))
        assert invalid.status_code == 422 and invalid.json()["detail"][0]["loc"] == ["body", "port"]
        outside = await tech.post("/api/cameras", json=body(sim, 6, host="127.9.9.9"))
        assert outside.status_code == 422
        assert outside.json()["detail"][0]["loc"] == ["body", "host"]
        assert outside.json()["detail"][0]["msg"].startswith("127.9.9.9 is outside the allowed networks")
        named_as_in_the_lists = {k: v for k, v in body(sim, 6).items() if k != "host"}
        as_address = await tech.post("/api/cameras", json={**named_as_in_the_lists, "address": "127.9.9.9"})
        assert as_address.status_code == 422  # read as the host (old code: "host: Field required")
        assert as_address.json()["detail"][0]["msg"].startswith("127.9.9.9 is outside the allowed networks")
        clash = await tech.post("/api/cameras", json=body(sim, 0, id="other-id"))
        assert clash.status_code == 409 and first["id"] in clash.json()["detail"]
        typo = await tech.patch(f"/api/cameras/{first['id']}", json={"nmae": "x"})
        assert typo.status_code == 422 and typo.json()["detail"][0]["loc"] == ["body", "nmae"]

        export = await operator.get("/api/cameras/export.csv")
        texts.append(export.text)
        assert export.status_code == 200 and export.content.startswith(b"\xef\xbb\xbf")
        lines = export.content.decode("utf-8-sig").splitlines()
        assert lines[0].startswith("id,name,host,port,username,region_code") and len(lines) == 4
        assert "广场东" in export.content.decode("utf-8-sig")

    everything = "\n".join(texts) + "\n".join(r.getMessage() for r in caplog.records)
    for secret in (SIM_PASSWORD, WRONG_PASSWORD):
        assert secret not in everything
    stored = await gateway.node.stores.cameras.get(first["id"])
    assert stored.password_enc and SIM_PASSWORD not in stored.password_enc


async def poll(client: httpx.AsyncClient, url: str) -> dict[str, object]:
    async with asyncio.timeout(30):
        while True:
            job = (await client.get(url)).json()
            if job["state"] in ("done", "failed"):
                return dict(job)
            await asyncio.sleep(0.05)


async def test_bulk_import_job_over_the_api(gateway: RunningGateway, sim: CameraSimulator) -> None:
    sim.cameras[2].faults.wrong_password = True
    csv_text = "name,address,port,username,password,region,category\n" + "".join(
        f"cam{c.index},{c.address},{sim.http_port},admin,{SIM_PASSWORD},511902,road\n" for c in sim.cameras
    )
    csv_text += f"outside,127.9.0.9,{sim.http_port},admin,x,511902,road\nbroken,,80,admin,x,5119,road\n"
    tech = await login_as(gateway, "tech2", Role.TECHNICIAN)
    async with tech:
        started = await tech.post(
            "/api/cameras/imports", content=csv_text.encode("utf-8-sig"), headers={"Content-Type": "text/csv"}
        )
        assert started.status_code == 202, started.text
        job = await poll(tech, f"/api/cameras/imports/{started.json()['id']}")
        assert job["state"] == "done"
        assert (job["total"], job["done"], job["ok"], job["failed"]) == (10, 10, 7, 3)
        assert job["by_status"] == {"online": 7, "auth_failed": 1, "refused": 1, "invalid": 1}
        result = await tech.get(str(job["result_url"]))
        assert result.status_code == 200 and result.content.startswith(b"\xef\xbb\xbf")
        text = result.content.decode("utf-8-sig")
        assert "auth_failed" in text and "127.9.0.9 is outside the allowed networks" in text
        assert "host: empty" in text and "region_code: '5119' is not a 6-digit region code" in text
        assert SIM_PASSWORD not in text

        book = Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.append(["设备名称", "IP地址", "端口", "用户名", "密码"])
        sheet.append(["表格导入", sim.cameras[7].address, sim.http_port, "admin", SIM_PASSWORD])
        from io import BytesIO

        buffer = BytesIO()
        book.save(buffer)
        xlsx = await tech.post("/api/cameras/imports", params={"filename": "cams.xlsx"}, content=buffer.getvalue())
        assert xlsx.status_code == 202
        done = await poll(tech, f"/api/cameras/imports/{xlsx.json()['id']}")
        assert (done["ok"], done["failed"]) == (1, 0)
        listing = (await tech.get("/api/cameras", params={"q": "表格导入"})).json()
        assert listing["total"] == 1  # the same address, renamed: updated, not duplicated
        assert (await tech.get("/api/cameras/summary")).json()["total"] == 8

        no_type = await tech.post("/api/cameras/imports", content=b"x")
        assert no_type.status_code == 422 and no_type.json()["detail"][0]["loc"] == ["header", "content-type"]
        unreadable = await tech.post(
            "/api/cameras/imports", content=b"name,foo\nx,y\n", headers={"Content-Type": "text/csv"}
        )
        assert unreadable.status_code == 422 and "no camera address column" in unreadable.json()["detail"][0]["msg"]
        assert (await tech.get("/api/cameras/imports/imp-unknown")).status_code == 404


async def test_damaged_or_oversized_camera_lists_are_422_not_500(tmp_path: Path) -> None:
    settings = node_settings(
        tmp_path, http={"port": free_port()}, cameras={"max_import_rows": 1000, "sweep": {"enabled": False}}
    )
    async with serving(settings) as gw:
        tech = await login_as(gw, "tech4", Role.TECHNICIAN)
        async with tech:
            cut = await tech.post("/api/cameras/imports", params={"filename": "cams.xlsx"}, content=truncated_sheet())
            assert cut.status_code == 422, cut.text
            assert cut.json()["detail"][0]["loc"] == ["body"]
            assert "XLSX workbook is damaged after row" in cut.json()["detail"][0]["msg"]
            quoted = await tech.post(
                "/api/cameras/imports", content=unclosed_quote_csv(), headers={"Content-Type": "text/csv"}
            )
            assert quoted.status_code == 422, quoted.text
            assert "of the CSV cannot be read" in quoted.json()["detail"][0]["msg"]
            rows = "IP\n" + "".join(f"127.1.{n // 250}.{n % 250 + 1}\n" for n in range(1001))
            too_long = await tech.post("/api/cameras/imports", content=rows, headers={"Content-Type": "text/csv"})
            assert too_long.status_code == 422, too_long.text
            assert (
                "more than 1000 rows after the header (cameras.max_import_rows" in too_long.json()["detail"][0]["msg"]
            )
            assert (await tech.get("/api/cameras/imports")).json() == []  # nothing was queued


async def test_the_node_sweeps_its_cameras_in_the_background(sim: CameraSimulator, tmp_path: Path) -> None:
    sweep = {"first_delay_s": 0, "interval_s": 0.3, "timeout_s": 2, "connect_timeout_s": 1}
    settings = node_settings(tmp_path, http={"port": free_port()}, cameras={"sweep": sweep})
    async with serving(settings) as gw:
        tech = await login_as(gw, "tech3", Role.TECHNICIAN)
        async with tech:
            added = (await tech.post("/api/cameras", json=body(sim, 0))).json()
            assert added["status"] == "online"
            sim.cameras[0].faults.offline = True
            async with asyncio.timeout(20):
                while (await tech.get(f"/api/cameras/{added['id']}")).json()["status"] != "offline":
                    await asyncio.sleep(0.1)
            sim.cameras[0].faults.offline = False
            async with asyncio.timeout(20):
                while (await tech.get(f"/api/cameras/{added['id']}")).json()["status"] != "online":
                    await asyncio.sleep(0.1)
            metrics = (await tech.get("/metrics")).text
            assert "xueliang_camera_sweep_last_timestamp_seconds" in metrics
            assert 'xueliang_cameras{status="online"} 1.0' in metrics
