"""The reference intake's own contract, over real HTTP: signatures, idempotency, status, stats, control, CLI."""

from __future__ import annotations

import subprocess
import sys

import httpx

from xueliang.events.forwarder import encode_body
from xueliang.events.signing import signed_headers

from .conftest import SECRET, IntakeProcess

CODE = "511902-20250301-N01-000001"
BODY = {
    "caseNo": CODE, "title": "【橙色预警】测试", "eventTime": "2025-03-01T02:00:00+00:00", "grade": "orange",
    "categoryCode": "0201", "deadlineTier": "same_day", "dueTime": "2025-03-02T02:00:00+00:00",
    "routeLevel": "township", "targetUnit": "511902001", "regionCode": "511902",
}  # fmt: skip


def post(client: httpx.Client, body: dict[str, object], *, key: str = CODE, secret: str = SECRET) -> httpx.Response:
    raw = encode_body(body)
    headers = {"Idempotency-Key": key, **signed_headers("gateway", secret, "POST", "/api/v1/cases", raw)}
    return client.post("/api/v1/cases", content=raw, headers=headers)


def test_signed_idempotent_intake(intake: IntakeProcess) -> None:
    with httpx.Client(base_url=intake.url, timeout=5) as client:
        assert post(client, BODY, secret="wrong-secret").status_code == 401
        unsigned = client.post("/api/v1/cases", json=BODY, headers={"Idempotency-Key": CODE})
        assert unsigned.status_code == 401 and "missing" in unsigned.json()["detail"]
        assert post(client, {**BODY, "colour": "x"}).status_code == 422
        assert post(client, BODY, key="another").status_code == 422
        first = post(client, BODY)
        assert first.status_code == 201
        receipt = first.json()
        assert receipt["code"] == CODE and receipt["status"] == "received" and not receipt["duplicate"]
        again = post(client, BODY)
        assert again.status_code == 409 and again.json() == {**receipt, "duplicate": True}
        path = f"/api/v1/cases/{CODE}"
        status = client.get(path, headers=signed_headers("gateway", SECRET, "GET", path, b""))
        assert status.status_code == 200 and status.json()["history"][0]["status"] == "received"
        assert client.get(path).status_code == 401
        stats = client.get("/api/v1/stats").json()
        assert (stats["received"], stats["duplicates_refused"], stats["bad_signatures"], stats["invalid"]) == (
            1,
            1,
            3,
            2,
        )
        assert client.post("/_control", json={"down": True}).status_code == 200
        assert post(client, BODY).status_code == 503
        assert client.post("/_control", json={"colour": 1}).status_code == 422
        client.post("/_control", json={})
        schema = client.get("/openapi.json").json()
        assert "IntakeCase" in schema["components"]["schemas"]
        assert "/api/v1/cases" in schema["paths"] and "/api/v1/stats" in schema["paths"]


def test_cli_help_and_missing_secret() -> None:
    command = [sys.executable, "-m", "xueliang.events.intake"]
    shown = subprocess.run([*command, "--help"], capture_output=True, text=True, check=False)
    assert shown.returncode == 0 and "--callback-url" in shown.stdout and "--secret" in shown.stdout
    refused = subprocess.run(
        [sys.executable, "-m", "xueliang.events.intake", "--port", "0"], capture_output=True, text=True, check=False,
        env={"PATH": "/usr/bin"},
    )  # fmt: skip
    assert refused.returncode == 2 and "--secret" in refused.stderr
