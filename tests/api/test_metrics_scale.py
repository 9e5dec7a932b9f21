"""/metrics at city scale: the series a node exports do not grow with its cameras.

Two real gateways (uvicorn on loopback, SQLite) get the same traffic: per-camera reads, a change,
a 404, a failed login, a public case look-up. One holds 10 cameras, the other 2,000. Their scrapes
must hold the same series (no camera id, name, host, case code or user in a label), and every
metric must have HELP and TYPE and a Prometheus-style name.
"""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import RunningGateway, dev_settings, serving
from xueliang.gateway.models import CameraRecord, CameraStatus, PatrolPolicy

STATUSES = list(CameraStatus)
NAME = re.compile(r"^xueliang_[a-z][a-z0-9]*(_[a-z0-9]+)*$")
# Units must be base units spelled out (Prometheus naming): not _ms, _s, _sec, _secs, _kb, _mb, ...
SHORT_UNIT = re.compile(r"_(ms|s|sec|secs|us|ns|kb|mb|gb|percent)$")
Series = frozenset[tuple[str, tuple[tuple[str, str], ...]]]


def camera(index: int) -> CameraRecord:
    return CameraRecord(
        id=f"cam-{index:05d}",
        name=f"路口{index}",
        host=f"127.77.{index // 250}.{index % 250 + 1}",
        status=STATUSES[index % len(STATUSES)],
        policy=PatrolPolicy(enabled=False),  # the store and the API are under test here, not snapshots
    )


async def scrape_after_traffic(gw: RunningGateway, count: int) -> tuple[str, list[CameraRecord]]:
    records = [camera(i) for i in range(count)]
    for record in records:
        await gw.node.stores.cameras.upsert(record)
    token = await gw.login(*gw.admin)
    async with gw.client(token) as client:
        for record in records[:: max(1, count // 50)]:  # 10 vs 50 distinct camera paths
            assert (await client.get(f"/api/cameras/{record.id}")).status_code == 200
            assert (await client.get(f"/api/cameras/{record.id}/zones")).status_code == 200
        changed = await client.patch(f"/api/cameras/{records[1].id}", json={"name": "北门"})
        assert changed.status_code == 200, changed.text
        assert (await client.get("/api/cameras/no-such-camera")).status_code == 404
        assert (await client.get("/api/cameras", params={"search": records[-1].name})).status_code == 200
    async with gw.client() as anonymous:
        assert (await anonymous.post("/api/auth/login", json={"username": "x", "password": "y"})).status_code == 401
        assert (await anonymous.get("/api/cameras")).status_code == 401
        assert (await anonymous.get("/c/3301-NOSUCH-CODE.json")).status_code in (400, 404)
    await gw.node.metrics.sample()  # what the node's metrics service does every period
    async with gw.client() as anonymous:
        response = await anonymous.get("/metrics")
    assert response.status_code == 200
    return response.text, records


def series_of(text: str) -> Series:
    return frozenset(
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    )


async def test_series_do_not_grow_with_the_camera_count(tmp_path: Path) -> None:
    async with serving(dev_settings(tmp_path / "small")) as small:
        text_small, _ = await scrape_after_traffic(small, 10)
    async with serving(dev_settings(tmp_path / "large")) as large:
        text_large, records = await scrape_after_traffic(large, 2_000)
    few, many = series_of(text_small), series_of(text_large)
    assert many == few, f"series only with 2,000 cameras: {sorted(many - few)[:10]}"
    labels = {value for _, pairs in many for _, value in pairs}
    identities = {r.id for r in records} | {r.name for r in records} | {r.host for r in records}
    assert not labels & identities, f"camera identity in a label: {sorted(labels & identities)[:5]}"
    assert not any(value.startswith("/c/3301") or value == "x" for value in labels)  # no raw path, no user


async def test_every_metric_has_help_type_and_a_conventional_name(tmp_path: Path) -> None:
    async with serving(dev_settings(tmp_path)) as gw:
        text, _ = await scrape_after_traffic(gw, 10)
    declared_help = set(re.findall(r"^# HELP (\S+) \S", text, re.MULTILINE))
    declared_type = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE))
    families = list(text_string_to_metric_families(text))
    assert families
    for family in families:
        exposed = family.name + ("_total" if family.type == "counter" else "")
        assert exposed in declared_help or family.name in declared_help, f"{exposed}: no HELP"
        assert family.documentation.strip(), f"{exposed}: empty HELP"
        assert declared_type.get(exposed, declared_type.get(family.name)) == family.type
        assert NAME.match(family.name), f"{family.name}: not snake_case under xueliang_"
        assert not SHORT_UNIT.search(family.name), f"{family.name}: spell the base unit (_seconds, _bytes)"
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples), family.name
        else:
            assert not family.name.endswith("_total"), f"{family.name}: _total is for counters"
    # The parts' sampled values: one closed set of snake_case names, base units spelled out.
    sampled = [s.labels for f in families if f.name == "xueliang_component_value" for s in f.samples]
    assert {labels["component"] for labels in sampled} >= {"cases", "patrol", "cameras", "live"}
    for labels in sampled:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", labels["name"]), labels
        assert not SHORT_UNIT.search(labels["name"]), f"{labels}: spell the base unit (_seconds, _bytes)"
