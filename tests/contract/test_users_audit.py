"""UserStore (users and API keys) and AuditLog, the same on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from xueliang.gateway.errors import Conflict, NotFound
from xueliang.gateway.models import ApiKey, AuditEntry, Role, User
from xueliang.gateway.stores import Stores


def user(name: str, role: Role = Role.OPERATOR) -> User:
    return User(username=name, password_hash=f"$argon2id$v=19$m=65536,t=3,p=4${name}", role=role)


async def test_users_add_get_list_update(stores: Stores) -> None:
    for name in ("zhang.wei", "admin", "li.na"):
        await stores.users.add_user(user(name, Role.ADMIN if name == "admin" else Role.OPERATOR))
    assert (await stores.users.get_user("li.na")).role is Role.OPERATOR
    assert [u.username for u in await stores.users.list_users()] == ["admin", "li.na", "zhang.wei"]

    changed = user("li.na", Role.TECHNICIAN).model_copy(update={"disabled": True})
    await stores.users.update_user(changed)
    assert await stores.users.get_user("li.na") == changed


async def test_users_conflict_and_not_found(stores: Stores) -> None:
    original = user("wang.fang")
    await stores.users.add_user(original)
    with pytest.raises(Conflict, match=r"wang\.fang"):
        await stores.users.add_user(user("wang.fang", Role.ADMIN))
    assert await stores.users.get_user("wang.fang") == original  # the refused add changed nothing
    with pytest.raises(NotFound, match="nobody"):
        await stores.users.get_user("nobody")
    with pytest.raises(NotFound, match="nobody"):
        await stores.users.update_user(user("nobody"))
    assert [u.username for u in await stores.users.list_users()] == ["wang.fang"]


async def test_api_keys_add_get_list_and_conflict(stores: Stores) -> None:
    intake = ApiKey(key_id="xlk_b2", name="governance centre callback", key_hash="h1", role=Role.INTAKE)
    await stores.users.add_api_key(intake)
    await stores.users.add_api_key(ApiKey(key_id="xlk_a1", name="ops script", key_hash="h2", role=Role.OPERATOR))
    assert await stores.users.get_api_key("xlk_b2") == intake
    assert [k.key_id for k in await stores.users.list_api_keys()] == ["xlk_a1", "xlk_b2"]
    with pytest.raises(Conflict, match="xlk_b2"):
        await stores.users.add_api_key(intake.model_copy(update={"name": "again"}))
    assert (await stores.users.get_api_key("xlk_b2")).name == "governance centre callback"
    with pytest.raises(NotFound, match="xlk_zz"):
        await stores.users.get_api_key("xlk_zz")


async def test_api_keys_update_disables_and_enables_and_unknown_is_not_found(stores: Stores) -> None:
    ops = ApiKey(key_id="xlk_c3", name="ops script", key_hash="h3", role=Role.OPERATOR)
    other = ApiKey(key_id="xlk_d4", name="wall kiosk", key_hash="h4", role=Role.OPERATOR)
    await stores.users.add_api_key(ops)
    await stores.users.add_api_key(other)

    disabled = ops.model_copy(update={"disabled": True, "key_hash": ""})
    await stores.users.update_api_key(disabled)
    assert await stores.users.get_api_key("xlk_c3") == disabled
    assert await stores.users.get_api_key("xlk_d4") == other  # only the one key changed
    await stores.users.update_api_key(ops)
    assert await stores.users.get_api_key("xlk_c3") == ops

    with pytest.raises(NotFound, match="xlk_zz"):
        await stores.users.update_api_key(ops.model_copy(update={"key_id": "xlk_zz"}))
    assert [k.key_id for k in await stores.users.list_api_keys()] == ["xlk_c3", "xlk_d4"]  # not created by update


async def test_audit_query_is_newest_first_with_filters(stores: Stores) -> None:
    base = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    entries = [
        AuditEntry(at=base, actor="admin", action="users.add", target="li.na", outcome="ok"),
        AuditEntry(at=base + timedelta(minutes=1), actor="li.na", action="POST /api/cameras", outcome="ok"),
        AuditEntry(at=base + timedelta(minutes=2), actor="li.na", action="DELETE /api/cameras/c1", outcome="denied"),
        AuditEntry(at=base + timedelta(minutes=3), actor="admin", action="POST /api/cameras", outcome="201"),
        AuditEntry(
            at=base + timedelta(minutes=4), actor="system", action="outbox.retry", detail="case 5119", outcome="ok"
        ),
    ]
    for entry in (entries[2], entries[0], entries[4], entries[1], entries[3]):  # not in time order
        await stores.audit.record(entry)

    assert await stores.audit.query() == entries[::-1]
    assert await stores.audit.query(actor="li.na") == [entries[2], entries[1]]
    assert await stores.audit.query(action="POST /api/cameras") == [entries[3], entries[1]]
    assert await stores.audit.query(actor="admin", action="POST /api/cameras") == [entries[3]]
    assert await stores.audit.query(since=base + timedelta(minutes=3)) == [entries[4], entries[3]]  # inclusive
    assert await stores.audit.query(limit=2) == [entries[4], entries[3]]
    assert await stores.audit.query(actor="nobody") == []


async def test_audit_entries_at_the_same_time_keep_insertion_order(stores: Stores) -> None:
    at = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
    first = AuditEntry(at=at, actor="system", action="scheduler.lease", outcome="ok")
    second = AuditEntry(at=at, actor="system", action="scheduler.lease", outcome="ok")  # identical, still kept
    third = AuditEntry(at=at, actor="system", action="forwarder.lease", outcome="ok")
    for entry in (first, second, third):
        await stores.audit.record(entry)
    found = await stores.audit.query()
    assert [e.action for e in found] == ["forwarder.lease", "scheduler.lease", "scheduler.lease"]
    assert found[0].at == at
