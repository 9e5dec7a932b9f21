"""Bad requests over real HTTP: each is a 4xx naming what is wrong (the field's ``loc``, or a
``detail`` saying what to send), never a 500 or a traceback, never an echo of a secret, and it
changes nothing."""

from __future__ import annotations

import json

import httpx

from tests.api.conftest import RunningGateway, add_user
from xueliang.gateway.models import CameraQuery, CameraRecord, Role

JSON = {"content-type": "application/json"}
NAN_SCORE = (
    b'{"zones": [{"id": "a", "kind": "crowd", "polygon": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]], "min_score": NaN}]}'
)
NAN_POINT = b'{"zones": [{"id": "a", "kind": "crowd", "polygon": [[NaN, 0.1], [0.9, 0.1], [0.9, 0.9]]}]}'
INF_DWELL = (  # an unbounded field: was stored as null, silently "the rule's default"
    b'{"zones": [{"id": "a", "kind": "loitering", "polygon": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]], '
    b'"dwell_s": Infinity}]}'
)


def strict_json(response: httpx.Response) -> object:
    """The body as standard JSON (no NaN/Infinity), checked for leaks of internals."""
    assert response.status_code < 500, (response.request.url, response.text)
    assert "Traceback" not in response.text and "/work/" not in response.text and ".py" not in response.text

    def refuse(constant: str) -> object:
        raise AssertionError(f"{constant} in {response.text}")

    return json.loads(response.text, parse_constant=refuse)


def fields(response: httpx.Response) -> set[tuple[object, ...]]:
    assert response.status_code == 422, response.text
    body = strict_json(response)
    assert isinstance(body, dict)
    return {tuple(error["loc"]) for error in body["detail"]}


async def test_non_finite_numbers_are_422_naming_the_field_not_500(gateway: RunningGateway) -> None:
    before = CameraRecord(id="cam-n", name="北门", host="127.1.0.78")
    await gateway.node.stores.cameras.upsert(before)
    async with gateway.client(await gateway.login(*gateway.admin)) as client:
        cases = [
            ("POST", "/api/auth/login", b'{"username": NaN, "password": "x"}', ("body", "username")),
            ("PATCH", "/api/users/admin", b'{"disabled": Infinity}', ("body", "disabled")),
            ("PUT", "/api/cameras/cam-n/zones", NAN_SCORE, ("body", "zones", 0, "min_score")),
            ("PUT", "/api/cameras/cam-n/zones", NAN_POINT, ("body", "zones", 0, "polygon", 0, 0)),
            ("PUT", "/api/cameras/cam-n/zones", INF_DWELL, ("body", "zones", 0, "dwell_s")),
            ("POST", "/api/cameras", b'{"host": "127.1.0.79", "port": NaN}', ("body", "port")),
            ("PATCH", "/api/cameras/cam-n", b'{"location": {"lat": -Infinity}}', ("body", "location", "lat")),
        ]
        for method, path, body, loc in cases:
            response = await client.request(method, path, content=body, headers=JSON)
            assert loc in fields(response), (method, path, response.text)
    assert await gateway.node.stores.cameras.get("cam-n") == before  # nothing half-applied
    assert [c.id for c in await gateway.node.stores.cameras.list(CameraQuery())] == ["cam-n"]


async def test_unknown_fields_are_refused_by_name_and_change_nothing(gateway: RunningGateway) -> None:
    await gateway.node.stores.cameras.upsert(CameraRecord(id="cam-u", name="南门", host="127.1.0.80"))
    await add_user(gateway, "op-u", Role.OPERATOR)
    async with gateway.client(await gateway.login(*gateway.admin)) as client:
        key_id = (await client.post("/api/api-keys", json={"name": "k", "role": "intake"})).json()["key_id"]
        cases = [
            ("PATCH", "/api/users/op-u", {"disable": True}, "disable"),  # a typo must not be a silent no-op
            ("POST", "/api/users", {"username": "op-v", "password": "long-enough-pw", "role": "operator", "x": 1}, "x"),
            ("POST", "/api/api-keys", {"name": "k2", "role": "intake", "scope": "all"}, "scope"),
            ("PATCH", f"/api/api-keys/{key_id}", {"disabled": True, "why": "t"}, "why"),
            ("POST", "/api/auth/login", {"username": "op-u", "password": "correct-horse-1", "otp": "1"}, "otp"),
            ("POST", "/api/incidents/none/dismiss", {"reason": "施工 works", "note": "x"}, "note"),
            ("POST", "/api/incidents/none/escalate", {"grade": "red", "title": "x"}, "title"),
            ("PUT", "/api/cameras/cam-u/zones", {"zones": [], "camera": "cam-u"}, "camera"),
        ]
        for method, path, body, extra in cases:
            response = await client.request(method, path, json=body)
            assert ("body", extra) in fields(response), (method, path, response.text)
            assert "Extra inputs are not permitted" in response.text
    user = await gateway.node.stores.users.get_user("op-u")
    assert not user.disabled
    assert {u.username for u in await gateway.node.stores.users.list_users()} == {gateway.admin[0], "op-u"}
    assert [k.name for k in await gateway.node.stores.users.list_api_keys()] == ["k"]
    assert not (await gateway.node.stores.users.get_api_key(key_id)).disabled


async def test_bodies_that_are_not_json_objects_get_a_message_saying_what_to_send(gateway: RunningGateway) -> None:
    async with gateway.client(await gateway.login(*gateway.admin)) as client:
        broken = await client.post("/api/users", content=b'{"username": ', headers=JSON)
        assert fields(broken) == {("body", 13)} and "JSON decode error" in broken.text
        array = await client.post("/api/users", json=[{"username": "a"}])
        assert fields(array) == {("body",)} and "valid dictionary" in array.text
        not_utf8 = await client.post("/api/users", content=b'{"username": "\xff\xfe"}', headers=JSON)
        assert not_utf8.status_code == 400
        assert "UTF-8" in str(strict_json(not_utf8)) and "application/json" in not_utf8.text
        body = b'{"username": "op-w", "password": "secret-horse-99", "role": "operator"}'
        plain = await client.post("/api/users", content=body, headers={"content-type": "text/plain"})
        assert fields(plain) == {("body",)}
        assert "Content-Type: application/json" in plain.text and "secret-horse-99" not in plain.text
        empty = await client.post("/api/users", content=b"", headers=JSON)
        assert fields(empty) == {("body",)}
    assert [u.username for u in await gateway.node.stores.users.list_users()] == [gateway.admin[0]]


async def test_validation_errors_do_not_echo_secrets_or_huge_inputs(gateway: RunningGateway) -> None:
    async with gateway.client(await gateway.login(*gateway.admin)) as client:
        short = await client.post("/api/users", json={"username": "op-s", "password": "hunter2", "role": "operator"})
        assert fields(short) == {("body", "password")} and "hunter2" not in short.text
        camera = await client.post("/api/cameras", json={"host": "127.1.0.81", "port": 0, "password": "cam-pw-123"})
        assert ("body", "port") in fields(camera) and "cam-pw-123" not in camera.text
        missing = await client.post("/api/users", json={"password": "long-secret-pw", "role": "operator"})
        assert fields(missing) == {("body", "username")} and "long-secret-pw" not in missing.text
        huge = await client.post("/api/auth/login", json={"username": "u" * 100_000, "password": "p"})
        assert fields(huge) == {("body", "username")} and len(huge.content) < 2_000


async def test_query_parameters_out_of_range_are_422_naming_the_parameter(gateway: RunningGateway) -> None:
    async with gateway.client(await gateway.login(*gateway.admin)) as client:
        for path, params, name in [
            ("/api/cameras", {"offset": str(10**30)}, "offset"),  # was a 500: overflowed the store's integer
            ("/api/cases", {"offset": str(10**30)}, "offset"),
            ("/api/cameras", {"offset": "-1"}, "offset"),
            ("/api/cameras", {"limit": "0"}, "limit"),
            ("/api/cameras", {"limit": "1001"}, "limit"),
            ("/api/cameras", {"limit": "ten"}, "limit"),
            ("/api/cameras", {"status": "burning"}, "status"),
            ("/api/cameras", {"q": "x" * 201}, "q"),
            ("/api/audit", {"limit": "-5"}, "limit"),
            ("/api/audit", {"since": "yesterday"}, "since"),
            ("/api/cameras/imports", {"filename": "x" * 201}, "filename"),
        ]:
            method = "POST" if path.endswith("imports") else "GET"
            response = await client.request(method, path, params=params, content=b"a", headers=JSON)
            assert ("query", name) in fields(response), (path, params, response.text)


async def test_odd_path_parameters_are_404_with_the_id_named_never_500(gateway: RunningGateway) -> None:
    async with gateway.client(await gateway.login(*gateway.admin)) as client:
        for odd in ("%00", "x" * 4000, "摄像机", "%E2%80%AE", "a%20b", "'%3B--"):
            for method, path in [
                ("GET", f"/api/cameras/{odd}"),
                ("PATCH", f"/api/cameras/{odd}"),
                ("DELETE", f"/api/cameras/{odd}"),
                ("POST", f"/api/cameras/{odd}/reprobe"),
                ("GET", f"/api/cameras/{odd}/zones"),
                ("PUT", f"/api/cameras/{odd}/zones"),
                ("GET", f"/api/cameras/imports/{odd}"),
                ("GET", f"/api/cameras/imports/{odd}/result.csv"),
                ("PATCH", f"/api/users/{odd}"),
                ("PATCH", f"/api/api-keys/{odd}"),
                ("DELETE", f"/api/api-keys/{odd}"),
                ("POST", f"/api/incidents/{odd}/ack"),
                ("GET", f"/api/incidents/{odd}/evidence.jpg"),
            ]:
                body = {"zones": []} if path.endswith("zones") else {"disabled": True} if "api-keys" in path else {}
                response = await client.request(method, path, json=body)
                assert response.status_code == 404, (method, path[:60], response.text[:200])
                detail = strict_json(response)
                assert isinstance(detail, dict) and isinstance(detail["detail"], str), detail
        for traversal in ("/api/cameras/..%2F..%2Fetc%2Fpasswd", "/api/cameras/imports/..%2F..%2Fsecrets"):
            assert (await client.get(traversal)).status_code == 404
