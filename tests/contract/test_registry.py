"""CameraRegistry: upsert/get/find/list/count/delete/status_counts, the same on both backends."""

from __future__ import annotations

import pytest

from xueliang.gateway.errors import Conflict, NotFound
from xueliang.gateway.models import CameraQuery, CameraRecord, CameraStatus, Location, StreamProfile
from xueliang.gateway.stores import Stores


def camera(
    camera_id: str,
    host: str,
    *,
    port: int = 80,
    name: str = "",
    status: CameraStatus = CameraStatus.ONLINE,
    region: str = "511902",
    township: str = "东城街道",
    grid: str = "G-01",
    category: str = "road",
    address: str = "",
) -> CameraRecord:
    return CameraRecord(
        id=camera_id,
        name=name or f"camera {camera_id}",
        host=host,
        port=port,
        status=status,
        category=category,
        location=Location(region_code=region, township=township, grid_code=grid, address=address),
        profiles=[StreamProfile(token="main", encoding="H264", width=1920, height=1080)],
    )


async def test_upsert_then_get_returns_the_same_record(stores: Stores) -> None:
    cam = camera("cam-001", "127.0.0.11", name="巴州区 人民广场 东口", address="人民广场 1 号")
    await stores.cameras.upsert(cam)
    assert await stores.cameras.get("cam-001") == cam
    assert await stores.cameras.find_by_address("127.0.0.11", 80) == cam
    assert await stores.cameras.find_by_address("127.0.0.11", 81) is None


async def test_get_and_delete_of_an_unknown_camera_raise_not_found(stores: Stores) -> None:
    with pytest.raises(NotFound, match="cam-404"):
        await stores.cameras.get("cam-404")
    with pytest.raises(NotFound, match="cam-404"):
        await stores.cameras.delete("cam-404")


async def test_upsert_replaces_by_id_and_moves_the_indexes(stores: Stores) -> None:
    await stores.cameras.upsert(camera("cam-1", "127.0.0.1", status=CameraStatus.PROVISIONING, port=8001))
    changed = camera("cam-1", "127.0.0.2", status=CameraStatus.OFFLINE, region="511921", category="school")
    await stores.cameras.upsert(changed)

    assert await stores.cameras.get("cam-1") == changed
    assert await stores.cameras.count(CameraQuery(status=CameraStatus.PROVISIONING)) == 0
    assert [c.id for c in await stores.cameras.list(CameraQuery(status=CameraStatus.OFFLINE))] == ["cam-1"]
    assert await stores.cameras.count(CameraQuery(region_code="511902")) == 0
    assert await stores.cameras.count(CameraQuery(category="school")) == 1
    assert await stores.cameras.find_by_address("127.0.0.1", 8001) is None  # the old address is free again
    await stores.cameras.upsert(camera("cam-2", "127.0.0.1", port=8001))


async def test_duplicate_address_under_another_id_is_a_conflict(stores: Stores) -> None:
    first = camera("cam-a", "127.0.0.5", port=8080)
    await stores.cameras.upsert(first)
    with pytest.raises(Conflict, match=r"127\.0\.0\.5:8080.*cam-a"):
        await stores.cameras.upsert(camera("cam-b", "127.0.0.5", port=8080))
    with pytest.raises(NotFound):
        await stores.cameras.get("cam-b")
    assert await stores.cameras.find_by_address("127.0.0.5", 8080) == first
    await stores.cameras.upsert(camera("cam-b", "127.0.0.5", port=8081))  # another port is another camera
    assert await stores.cameras.count(CameraQuery()) == 2


async def test_list_is_ordered_by_id_and_pages(stores: Stores) -> None:
    for n in (7, 3, 10, 1, 5):
        await stores.cameras.upsert(camera(f"cam-{n:02d}", f"127.0.1.{n}"))
    ids = [c.id for c in await stores.cameras.list(CameraQuery())]
    assert ids == ["cam-01", "cam-03", "cam-05", "cam-07", "cam-10"]
    page = await stores.cameras.list(CameraQuery(limit=2, offset=1))
    assert [c.id for c in page] == ["cam-03", "cam-05"]
    filtered = await stores.cameras.list(CameraQuery(status=CameraStatus.ONLINE, limit=2, offset=3))
    assert [c.id for c in filtered] == ["cam-07", "cam-10"]
    assert await stores.cameras.count(CameraQuery(limit=1)) == 5


async def test_filters_combine_and_search_matches_name_host_or_address(stores: Stores) -> None:
    await stores.cameras.upsert(camera("c1", "10.1.0.1", name="School Gate North", category="school", grid="G-01"))
    await stores.cameras.upsert(
        camera("c2", "10.1.0.2", name="十字路口", category="road", grid="G-02", status=CameraStatus.OFFLINE)
    )
    await stores.cameras.upsert(
        camera("c3", "10.2.0.3", name="Bus station", township="西城街道", address="江北大道 88 号")
    )
    await stores.cameras.upsert(camera("c4", "10.2.0.4", name="Square", region="511921", grid="G-02"))

    async def ids(**query: object) -> list[str]:
        found = [c.id for c in await stores.cameras.list(CameraQuery.model_validate(query))]
        assert await stores.cameras.count(CameraQuery.model_validate(query)) == len(found)
        return found

    assert await ids(status=CameraStatus.OFFLINE) == ["c2"]
    assert await ids(region_code="511902") == ["c1", "c2", "c3"]
    assert await ids(township="西城街道") == ["c3"]
    assert await ids(grid_code="G-02") == ["c2", "c4"]
    assert await ids(grid_code="G-02", region_code="511902") == ["c2"]
    assert await ids(category="school") == ["c1"]
    assert await ids(category="road", status=CameraStatus.ONLINE) == ["c3", "c4"]
    assert await ids(search="school gate") == ["c1"]  # case-insensitive
    assert await ids(search="路口") == ["c2"]
    assert await ids(search="10.2.") == ["c3", "c4"]  # host
    assert await ids(search="江北大道") == ["c3"]  # address
    assert await ids(search="10.", category="road", grid_code="G-02") == ["c2", "c4"]
    assert await ids(search="nowhere") == []
    assert await ids(region_code="", search="") == ["c1", "c2", "c3", "c4"]  # empty fields do not filter


async def test_delete_removes_the_camera_from_every_index(stores: Stores) -> None:
    await stores.cameras.upsert(camera("gone", "127.0.2.1", name="Temporary", status=CameraStatus.DEGRADED))
    await stores.cameras.upsert(camera("kept", "127.0.2.2"))
    await stores.cameras.delete("gone")

    with pytest.raises(NotFound):
        await stores.cameras.get("gone")
    assert await stores.cameras.find_by_address("127.0.2.1", 80) is None
    assert await stores.cameras.count(CameraQuery(status=CameraStatus.DEGRADED)) == 0
    assert await stores.cameras.count(CameraQuery(search="temporary")) == 0
    assert [c.id for c in await stores.cameras.list(CameraQuery())] == ["kept"]
    await stores.cameras.upsert(camera("again", "127.0.2.1"))  # its address can be reused


async def test_status_counts_cover_every_status(stores: Stores) -> None:
    assert await stores.cameras.status_counts() == {status: 0 for status in CameraStatus}
    await stores.cameras.upsert(camera("a", "127.0.3.1", status=CameraStatus.ONLINE))
    await stores.cameras.upsert(camera("b", "127.0.3.2", status=CameraStatus.ONLINE))
    await stores.cameras.upsert(camera("c", "127.0.3.3", status=CameraStatus.AUTH_FAILED))
    counts = await stores.cameras.status_counts()
    assert counts[CameraStatus.ONLINE] == 2
    assert counts[CameraStatus.AUTH_FAILED] == 1
    assert sum(counts.values()) == 3
    assert set(counts) == set(CameraStatus)
