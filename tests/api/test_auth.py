"""Auth and roles over real HTTP: 401 without credentials, 403 for the wrong role, both audited."""

from __future__ import annotations

import asyncio
import os
import sys
from asyncio.subprocess import PIPE

import httpx

from tests.api.conftest import RunningGateway, add_user
from xueliang.gateway.models import Role

PROTECTED = [("GET", "/api/users"), ("POST", "/api/users"), ("GET", "/api/audit"), ("POST", "/api/api-keys")]


async def test_health_is_open_and_readiness_reports_backend(gateway: RunningGateway) -> None:
    async with gateway.client() as client:
        assert (await client.get("/healthz")).json()["status"] == "ok"
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["backend"] in ("sqlite", "redis")
        metrics = await client.get("/metrics")
        assert "xueliang_http_requests_total" in metrics.text


async def test_bus_counters_are_exported_as_metrics(gateway: RunningGateway) -> None:
    await gateway.node.stores.bus.publish("camera.status", {"camera": "cam-1", "status": "online"})
    await gateway.node.metrics.sample()  # what the node's metrics service does every period
    async with gateway.client() as client:
        text = (await client.get("/metrics")).text
    lines = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if "bus_" in line}
    series = 'xueliang_component_value{component="cases",name="bus_%s"}'
    assert lines[series % "published"] >= 1
    assert lines[series % "trimmed"] == 0 and lines[series % "refused"] == 0


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
        assert response.json()["detail"].startswith("无权执行此操作（当前角色 operator，需要 admin）")  # Chinese first
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


async def create_key(gw: RunningGateway, admin_token: str, name: str) -> tuple[str, str]:
    async with gw.client(admin_token) as client:
        created = await client.post("/api/api-keys", json={"name": name, "role": "intake"})
        assert created.status_code == 201, created.text
        return str(created.json()["key"]), str(created.json()["key_id"])


async def me_status(gw: RunningGateway, key: str) -> int:
    async with gw.client(**{"X-API-Key": key}) as client:
        return (await client.get("/api/auth/me")).status_code


async def test_api_key_disabled_enabled_and_revoked_over_http(gateway: RunningGateway) -> None:
    admin_token = await gateway.login(*gateway.admin)
    key, key_id = await create_key(gateway, admin_token, "intake callback")
    operator_token = await add_user(gateway, "op3", Role.OPERATOR)
    assert await me_status(gateway, key) == 200

    async with gateway.client(operator_token) as client:  # admins only
        assert (await client.patch(f"/api/api-keys/{key_id}", json={"disabled": True})).status_code == 403
        assert (await client.delete(f"/api/api-keys/{key_id}")).status_code == 403
    assert await me_status(gateway, key) == 200

    async with gateway.client(admin_token) as client:
        disabled = await client.patch(f"/api/api-keys/{key_id}", json={"disabled": True})
        assert disabled.status_code == 200, disabled.text
        assert disabled.json()["disabled"] is True and disabled.json()["revoked"] is False
        assert "hash" not in disabled.text
    assert await me_status(gateway, key) == 401  # at once: the next request is refused
    async with gateway.client(admin_token) as client:
        enabled = await client.patch(f"/api/api-keys/{key_id}", json={"disabled": False})
        assert enabled.status_code == 200 and enabled.json()["disabled"] is False
    assert await me_status(gateway, key) == 200

    async with gateway.client(admin_token) as client:
        revoked = await client.delete(f"/api/api-keys/{key_id}")
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["revoked"] is True and revoked.json()["disabled"] is True
    assert await me_status(gateway, key) == 401
    async with gateway.client(admin_token) as client:
        again = await client.patch(f"/api/api-keys/{key_id}", json={"disabled": False})
        assert again.status_code == 409 and key_id in again.json()["detail"]  # revoked is for good
        listed = {k["key_id"]: k for k in (await client.get("/api/api-keys")).json()}
        assert listed[key_id]["revoked"] is True  # kept: audit entries naming the key stay readable
        assert (await client.delete("/api/api-keys/nope1234")).status_code == 404
        assert (await client.patch("/api/api-keys/nope1234", json={"disabled": True})).status_code == 404
        assert (await client.patch(f"/api/api-keys/{key_id}", json={})).status_code == 422
    assert await me_status(gateway, key) == 401

    writes = await gateway.node.stores.audit.query(actor=gateway.admin[0], limit=50)
    done = [(e.action, e.outcome) for e in writes if e.target == f"key_id={key_id}"]
    assert ("DELETE /api/api-keys/{key_id}", "ok 200") in done
    assert ("PATCH /api/api-keys/{key_id}", "ok 200") in done
    assert ("PATCH /api/api-keys/{key_id}", "error 409") in done


def cli_env(gw: RunningGateway) -> dict[str, str]:
    """Environment that points ``xueliang`` at the running gateway's stores."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XUELIANG_")}
    env |= {"XUELIANG_ENVIRONMENT": "development", "XUELIANG_NODE__DATA_DIR": str(gw.settings.node.data_dir)}
    if gw.settings.node.mode == "scaleout":
        env |= {
            "XUELIANG_NODE__MODE": "scaleout",
            "XUELIANG_STORAGE__REDIS_URL": gw.settings.storage.redis_url,
            "XUELIANG_STORAGE__REDIS_PREFIX": gw.settings.storage.redis_prefix,
            "XUELIANG_EVENTS__CODES__NODE_TAG": gw.settings.events.codes.node_tag,
        }
    return env


async def xueliang(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run the ``xueliang`` command line as a subprocess without blocking the gateway's loop."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "xueliang.gateway", *args, env=env, stdout=PIPE, stderr=PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_api_key_revoked_with_the_cli_is_refused_at_once(gateway: RunningGateway) -> None:
    key, key_id = await create_key(gateway, await gateway.login(*gateway.admin), "ops script")
    assert await me_status(gateway, key) == 200
    env = cli_env(gateway)

    code, listed, _ = await xueliang(env, "users", "keys")
    assert code == 0 and key_id in listed and "ops script" in listed and "active" in listed
    code, out, err = await xueliang(env, "users", "revoke-key", key_id)
    assert code == 0, err
    assert key_id in out
    assert await me_status(gateway, key) == 401
    code, listed, _ = await xueliang(env, "users", "keys")
    assert code == 0 and "revoked" in listed

    code, out, err = await xueliang(env, "users", "revoke-key", "nope1234")
    assert code == 1
    assert "nope1234" in err and "xueliang users keys" in err and "Traceback" not in out + err
    revokes = await gateway.node.stores.audit.query(action="api_keys.revoke", limit=5)
    assert [(e.target, e.outcome) for e in revokes] == [("nope1234", "error"), (key_id, "ok")]


async def test_the_key_commands_have_help() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XUELIANG_")}
    for command in ("keys", "revoke-key"):
        code, out, _ = await xueliang(env, "users", command, "--help")
        assert code == 0 and "Usage" in out and "API key" in out, command


async def test_repeated_failed_logins_lock_the_user_name_out_for_a_while(gateway: RunningGateway) -> None:
    await add_user(gateway, "op-locked", Role.OPERATOR, password="the-right-pass")
    async with gateway.client() as client:
        for _ in range(gateway.settings.security.login_max_failures):
            wrong = await client.post("/api/auth/login", json={"username": "op-locked", "password": "nope"})
            assert wrong.status_code == 401
        # answers to people: Chinese first, English second, as the 403 and the wall (old code: 401 in
        # English only, 429 English first)
        assert wrong.json()["detail"] == "用户名或密码错误 / wrong username or password"
        nobody = await client.get("/api/auth/me")
        assert nobody.status_code == 401 and nobody.json()["detail"].startswith("需要登录或 API 密钥 / ")
        locked = await client.post("/api/auth/login", json={"username": "op-locked", "password": "the-right-pass"})
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
        assert locked.json()["detail"].startswith("登录失败次数过多")
        assert "/ too many failed logins; try again in" in locked.json()["detail"]
        other = await client.post("/api/auth/login", json={"username": "op-other", "password": "nope"})
        assert other.status_code == 401  # other names from the same address are not locked yet
    refused = await gateway.node.stores.audit.query(actor="op-locked", action="POST /api/auth/login", limit=1)
    assert refused[0].outcome == "error 429"
