"""Zones over real HTTP: validated (points inside 0..1, no crossing edges, unique ids), stored on the
camera, read by staff, written by technicians only."""

from __future__ import annotations

from tests.api.conftest import RunningGateway, add_user
from xueliang.gateway.models import CameraRecord, Role

CROWD = {
    "id": "walkway",
    "name": "步行道 walkway",
    "kind": "crowd",
    "polygon": [[0.1, 0.5], [0.9, 0.5], [0.9, 0.95], [0.1, 0.95]],
}


async def test_zones_are_validated_stored_and_role_checked(gateway: RunningGateway) -> None:
    await gateway.node.stores.cameras.upsert(CameraRecord(id="cam-z", name="广场东", host="127.1.0.77"))
    tech = await add_user(gateway, "tech-z", Role.TECHNICIAN)
    operator = await add_user(gateway, "op-z", Role.OPERATOR)
    async with gateway.client(tech) as client:
        outside = {**CROWD, "polygon": [[0.1, 0.1], [1.25, 0.8], [0.2, 0.9]]}
        bad = await client.put("/api/cameras/cam-z/zones", json={"zones": [outside]})
        assert bad.status_code == 422
        assert "point 1 (1.25, 0.8) is outside" in bad.text
        assert [e["msg"][:8] for e in bad.json()["detail"]] == ["point 1 "]  # not pydantic's "Value error, "
        bowtie = {**CROWD, "id": "x", "polygon": [[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]}
        crossing = await client.put("/api/cameras/cam-z/zones", json={"zones": [bowtie]})
        assert crossing.status_code == 422 and "cross" in crossing.text
        twice = await client.put("/api/cameras/cam-z/zones", json={"zones": [CROWD, CROWD]})
        assert twice.status_code == 422 and "repeated: walkway" in twice.text
        ok = await client.put("/api/cameras/cam-z/zones", json={"zones": [CROWD]})
        assert ok.status_code == 200, ok.text
        missing = await client.put("/api/cameras/nope/zones", json={"zones": [CROWD]})
        assert missing.status_code == 404
    stored = await gateway.node.stores.cameras.get("cam-z")
    assert [(z.id, z.kind.value, len(z.polygon)) for z in stored.zones] == [("walkway", "crowd", 4)]
    async with gateway.client(operator) as client:
        assert (await client.get("/api/cameras/cam-z/zones")).json()["zones"][0]["id"] == "walkway"
        assert (await client.put("/api/cameras/cam-z/zones", json={"zones": []})).status_code == 403
