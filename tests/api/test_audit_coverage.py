"""Every state-changing API call leaves an audit entry naming who did it and to what, and no audit
entry holds a password, an API key or a token. Table-driven, over real HTTP on a real gateway."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.api.conftest import RunningGateway, dev_settings, serving
from xueliang.gateway.models import CameraRecord, PatrolPolicy

USER_PASSWORD = "user-pass-Secret-1"
NEW_PASSWORD = "user-pass-Secret-2"
CAMERA_PASSWORD = "cam-pass-Secret-3"


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    action: str  # an audit action this call must leave
    target: str  # ... whose target contains this
    json: object = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


CALLS = [
    Call(
        "POST",
        "/api/users",
        "users.add",
        "audit-u1",
        {"username": "audit-u1", "password": USER_PASSWORD, "role": "operator"},
    ),
    Call(
        "PATCH", "/api/users/{username}", "PATCH /api/users/{username}", "username=audit-u1", {"password": NEW_PASSWORD}
    ),
    Call("PATCH", "/api/users/{username}", "users.update", "audit-u1", {"role": "technician", "disabled": True}),
    Call("POST", "/api/api-keys", "api_keys.create", "", {"name": "intake-a", "role": "intake"}),
    Call("PATCH", "/api/api-keys/{key_id}", "PATCH /api/api-keys/{key_id}", "key_id=", {"disabled": True}),
    Call("DELETE", "/api/api-keys/{key_id}", "DELETE /api/api-keys/{key_id}", "key_id="),
    Call("PATCH", "/api/cameras/cam-a1", "cameras.update", "cam-a1", {"name": "东门", "password": CAMERA_PASSWORD}),
    Call("PUT", "/api/cameras/cam-a1/zones", "PUT /api/cameras/{camera_id}/zones", "camera_id=cam-a1", {"zones": []}),
    Call("POST", "/api/cameras/cam-a1/reprobe", "POST /api/cameras/{camera_id}/reprobe", "camera_id=cam-a1"),
    Call("POST", "/api/cameras/imports?filename=c.csv", "POST /api/cameras/imports", "", content=b"name,host\n"),
    Call("DELETE", "/api/cameras/cam-a2", "cameras.delete", "cam-a2"),
    Call("POST", "/api/incidents/inc-none/ack", "POST /api/incidents/{incident_id}/ack", "incident_id=inc-none"),
    Call(
        "POST",
        "/api/incidents/inc-none/dismiss",
        "POST /api/incidents/{incident_id}/dismiss",
        "incident_id=inc-none",
        {"reason": "施工 known work"},
    ),
    Call(
        "POST",
        "/api/incidents/inc-none/escalate",
        "POST /api/incidents/{incident_id}/escalate",
        "incident_id=inc-none",
        {},
    ),
    Call("POST", "/api/cases/3301-X-1/retry", "POST /api/cases/{code}/retry", "code=3301-X-1"),
    Call("PUT", "/api/wall/saved", "PUT /api/wall/saved", "", {"walls": [], "tours": []}),
    Call(
        "POST", "/api/cameras/cam-a1/ptz", "POST /api/cameras/{camera_id}/ptz", "camera_id=cam-a1", {"action": "stop"}
    ),
    Call(
        "DELETE", "/api/wall/whep/sessions/s-none", "DELETE /api/wall/whep/sessions/{session_id}", "session_id=s-none"
    ),
]


@pytest.fixture
async def gw(tmp_path: Path) -> RunningGateway:  # type: ignore[misc]
    async with serving(dev_settings(tmp_path)) as running:
        for number, camera_id in enumerate(("cam-a1", "cam-a2")):
            host = f"127.1.0.{90 + number}"  # nothing listens there: probes fail fast
            record = CameraRecord(id=camera_id, name="北门", host=host, policy=PatrolPolicy(enabled=False))
            await running.node.stores.cameras.upsert(record)
        yield running


async def test_every_state_change_is_audited_with_actor_and_target_and_no_secret(gw: RunningGateway) -> None:
    admin, admin_password = gw.admin
    token = await gw.login(admin, admin_password)
    secrets = [admin_password, token, USER_PASSWORD, NEW_PASSWORD, CAMERA_PASSWORD]
    ids = {"username": "audit-u1", "key_id": ""}
    async with gw.client(token) as client:
        for call in CALLS:
            path = call.path.format(**ids)
            seen = await client.get("/api/audit", params={"limit": 1000})
            before = len(seen.json())
            response = await client.request(call.method, path, json=call.json, content=call.content)
            assert response.status_code != 500, f"{call.method} {path}: {response.text}"
            if call.path == "/api/api-keys":
                ids["key_id"] = response.json()["key_id"]
                secrets.append(response.json()["key"])
            entries = (await client.get("/api/audit", params={"limit": 1000})).json()
            fresh = entries[: len(entries) - before]  # newest first
            target = call.target + (ids["key_id"] if call.target == "key_id=" else "")
            if call.path == "/api/api-keys":
                target = ids["key_id"]
            matching = [e for e in fresh if e["action"] == call.action and target in e["target"]]
            assert matching, f"{call.method} {path} ({response.status_code}): no {call.action} entry: {fresh}"
            assert all(e["actor"] == admin for e in matching), matching
        # A failed login is audited under the name tried, with neither password in the log.
        wrong = await client.post("/api/auth/login", json={"username": admin, "password": "wrong-" + admin_password})
        assert wrong.status_code == 401
        secrets.append("wrong-" + admin_password)
        entries = (await client.get("/api/audit", params={"limit": 1000})).json()
    assert any(e["action"] == "POST /api/auth/login" and e["actor"] == admin for e in entries)
    # and from where: every request-level entry names the peer address
    requests = [e for e in entries if e["action"].split(" ", 1)[0] in ("POST", "PUT", "PATCH", "DELETE")]
    assert requests and all(e["detail"] == "from 127.0.0.1" for e in requests), {e["detail"] for e in requests}
    text = json.dumps(entries, ensure_ascii=False)
    leaked = [s for s in secrets if s in text]
    assert not leaked, f"secrets in the audit log: {len(leaked)}"
