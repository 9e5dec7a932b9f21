"""Auth and roles over real HTTP: 401 without credentials, 403 for the wrong role, both audited."""

from __future__ import annotations

import httpx

from tests.api.conftest import RunningGateway
from xueliang.gateway.models import Role, User

PROTECTED = [("GET", "/api/users"), ("POST", "/api/users"), ("GET", "/api/audit"), ("POST", "/api/api-keys")]


async def add_user(gw: RunningGateway, username: str, role: Role, password: str = "correct-horse-1") -> str:
    await gw.node.stores.users.add_user(
        User(username=username, password_hash=await gw.node.passwords.hash(password), role=role)
    )
    return await gw.login(username, password)


async def test_health_is_open_and_readiness_reports_backend(gateway: RunningGateway) -> None:
    async with gateway.client() as client:
        assert (await client.get("/healthz")).json()["status"] == "ok"
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["backend"] in ("sqlite", "redis")
        metrics = await client.get("/metrics")
        assert "xueliang_http_requests_total" in metrics.text


async def test_every_protected_route_needs_auth_and_refusals_are_audited(gateway: RunningGateway) -> None:
    async with gateway.client() as client:
        for method, path in PROTECTED:
            response = await client.request(method, path, json={})
            assert response.status_code == 401, (method, path)
            assert response.headers["www-authenticate"] == "Bearer"
    entries = await gateway.node.stores.audit.query(actor="anonymous", limit=50)
    audited = {e.action for e in entries if e.outcome.startswith("unauthenticated")}
    assert {f"{m} {p}" for m, p in PROTECTED} <= audited


async def test_openapi_lists_routes_and_every_non_health_route_is_protected(gateway: RunningGateway) -> None:
    async with gateway.client() as client:
        spec = (await client.get("/openapi.json")).json()
        # health, login, and the public case status page (the QR target: no personal data)
        open_paths = {"/healthz", "/readyz", "/metrics", "/api/auth/login", "/c/{code}", "/c/{code}.json"}
        for path, operations in spec["paths"].items():
            for method in operations:
                if path in open_paths:
                    continue
                concrete = path.replace("{", "").replace("}", "")
                response = await client.request(method.upper(), concrete, json={})
                assert response.status_code == 401, (method, path, response.text)


async def test_wrong_role_is_forbidden_and_audited(gateway: RunningGateway) -> None:
    token = await add_user(gateway, "op1", Role.OPERATOR)
    async with gateway.client(token) as client:
        response = await client.get("/api/users")
        assert response.status_code == 403
        assert "needs admin" in response.json()["detail"]
    denied = await gateway.node.stores.audit.query(actor="op1", limit=10)
    assert any(e.action == "GET /api/users" and e.outcome.startswith("denied") for e in denied)


async def test_admin_logs_in_adds_user_and_the_write_is_audited(gateway: RunningGateway) -> None:
    username, password = gateway.admin
    token = await gateway.login(username, password)
    async with gateway.client(token) as client:
        created = await client.post(
            "/api/users", json={"username": "tech1", "password": "long-enough-pw", "role": "technician"}
        )
        assert created.status_code == 201, created.text
        assert "password" not in created.text and "hash" not in created.text
        users = (await client.get("/api/users")).json()
        assert {u["username"] for u in users} == {username, "tech1"}
        dup = await client.post(
            "/api/users", json={"username": "tech1", "password": "long-enough-pw", "role": "operator"}
        )
        assert dup.status_code == 409
        bad = await client.post("/api/users", json={"username": "x", "password": "short", "role": "boss"})
        assert bad.status_code == 422
        fields = {tuple(e["loc"][1:]) for e in bad.json()["detail"]}
        assert fields == {("username",), ("password",), ("role",)}
    writes = await gateway.node.stores.audit.query(action="POST /api/users", limit=10)
    assert [e.outcome for e in writes] == ["error 422", "error 409", "ok 201"]
    assert all(e.actor == username for e in writes)


async def test_disabled_user_and_bad_tokens_are_refused(gateway: RunningGateway) -> None:
    token = await add_user(gateway, "op2", Role.OPERATOR)
    async with gateway.client(token) as client:
        assert (await client.get("/api/auth/me")).json() == {"name": "op2", "role": "operator"}
    user = await gateway.node.stores.users.get_user("op2")
    await gateway.node.stores.users.update_user(user.model_copy(update={"disabled": True}))
    async with gateway.client(token) as client:
        response = await client.get("/api/auth/me")
        assert response.status_code == 401
        assert "disabled" in response.json()["detail"]
    async with gateway.client("not-a-token") as client:
        assert (await client.get("/api/auth/me")).status_code == 401
    async with gateway.client() as client:
        wrong = await client.post("/api/auth/login", json={"username": "op2", "password": "nope"})
        assert wrong.status_code == 401
    failed = await gateway.node.stores.audit.query(action="POST /api/auth/login", limit=5)
    assert failed[0].actor == "op2" and failed[0].outcome == "unauthenticated 401"


async def test_api_key_for_machine_client(gateway: RunningGateway) -> None:
    token = await gateway.login(*gateway.admin)
    async with gateway.client(token) as client:
        created = (await client.post("/api/api-keys", json={"name": "intake", "role": "intake"})).json()
        key = created["key"]
        listed = (await client.get("/api/api-keys")).json()
        assert key not in str(listed)
    async with gateway.client(**{"X-API-Key": key}) as client:
        me = (await client.get("/api/auth/me")).json()
        assert me == {"name": f"apikey:{created['key_id']}", "role": "intake"}
        assert (await client.get("/api/users")).status_code == 403
    async with gateway.client(**{"X-API-Key": key[:-2] + "xx"}) as client:
        assert (await client.get("/api/auth/me")).status_code == 401
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        assert (await client.get("/api/auth/me", headers={"X-API-Key": "garbage"})).status_code == 401
