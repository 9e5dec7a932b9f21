"""Users and API keys (admins only).

An API key can be disabled and enabled again (``PATCH``), or revoked (``DELETE``): revoking
disables it for good by erasing its stored hash, so no key matches it any more and no later
``PATCH`` can bring it back. The record itself is kept rather than deleted, so audit entries that
name ``apikey:<key_id>`` still lead to the key's name and role.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from xueliang.api.deps import AdminUser, NodeDep
from xueliang.gateway.errors import Conflict
from xueliang.gateway.models import USERNAME_PATTERN, USERNAME_RULE, ApiKey, Role, User
from xueliang.gateway.security import new_api_key

router = APIRouter(prefix="/api", tags=["users"])


class UserPublic(BaseModel):
    username: str
    role: Role
    disabled: bool
    created_at: datetime


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=USERNAME_PATTERN, description=USERNAME_RULE)
    password: str = Field(min_length=10, max_length=256, description="At least 10 characters")
    role: Role


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    disabled: bool | None = None
    password: str | None = Field(None, min_length=10, max_length=256)


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    role: Role = Role.INTAKE


class ApiKeyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    disabled: bool = Field(description="true: the key is refused at once; false: it works again")


class ApiKeyPublic(BaseModel):
    key_id: str
    name: str
    role: Role
    disabled: bool
    revoked: bool = Field(description="Revoked for good (DELETE); create a new key instead")
    created_at: datetime


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="Shown once; store it in the client now")


def _key_public(key: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic(
        key_id=key.key_id,
        name=key.name,
        role=key.role,
        disabled=key.disabled,
        revoked=key.revoked,
        created_at=key.created_at,
    )


def _public(user: User) -> UserPublic:
    return UserPublic(username=user.username, role=user.role, disabled=user.disabled, created_at=user.created_at)


@router.get("/users", summary="List users")
async def list_users(node: NodeDep, _: AdminUser) -> list[UserPublic]:
    return [_public(u) for u in await node.stores.users.list_users()]


@router.post("/users", status_code=status.HTTP_201_CREATED, summary="Add a user")
async def add_user(body: UserCreate, node: NodeDep, admin: AdminUser) -> UserPublic:
    user = User(username=body.username, password_hash=await node.passwords.hash(body.password), role=body.role)
    await node.stores.users.add_user(user)
    # The middleware's entry has no target here (no path parameter): name the new user.
    await node.audit(admin.name, "users.add", "ok", target=user.username, detail=user.role.value)
    return _public(user)


@router.patch("/users/{username}", summary="Change a user's role, password, or disable it")
async def update_user(username: str, body: UserUpdate, node: NodeDep, admin: AdminUser) -> UserPublic:
    user = await node.stores.users.get_user(username)
    changes: dict[str, object] = {}
    if body.role is not None:
        changes["role"] = body.role
    if body.disabled is not None:
        changes["disabled"] = body.disabled
    if body.password is not None:
        changes["password_hash"] = await node.passwords.hash(body.password)
    user = user.model_copy(update=changes)
    await node.stores.users.update_user(user)
    changed = ",".join("password" if k == "password_hash" else f"{k}={v}" for k, v in changes.items())
    await node.audit(admin.name, "users.update", "ok", target=username, detail=changed)  # never the hash
    return _public(user)


@router.get("/api-keys", summary="List API keys (without the keys)")
async def list_api_keys(node: NodeDep, _: AdminUser) -> list[ApiKeyPublic]:
    return [_key_public(k) for k in await node.stores.users.list_api_keys()]


@router.post("/api-keys", status_code=status.HTTP_201_CREATED, summary="Create an API key for a machine client")
async def create_api_key(body: ApiKeyCreate, node: NodeDep, admin: AdminUser) -> ApiKeyCreated:
    key, key_id, key_hash = new_api_key()
    stored = ApiKey(key_id=key_id, name=body.name, key_hash=key_hash, role=body.role)
    await node.stores.users.add_api_key(stored)
    # The key's id (never the key) as the target: the middleware's entry has none.
    await node.audit(admin.name, "api_keys.create", "ok", target=key_id, detail=f"{body.name} {body.role.value}")
    return ApiKeyCreated(key=key, **_key_public(stored).model_dump())


@router.patch("/api-keys/{key_id}", summary="Disable an API key (refused at once) or enable it again")
async def update_api_key(key_id: str, body: ApiKeyUpdate, node: NodeDep, _: AdminUser) -> ApiKeyPublic:
    stored = await node.stores.users.get_api_key(key_id)
    if stored.revoked and not body.disabled:
        raise Conflict(f"API key {key_id} was revoked and cannot be enabled again; create a new key")
    stored = stored.model_copy(update={"disabled": body.disabled})
    await node.stores.users.update_api_key(stored)
    return _key_public(stored)


@router.delete("/api-keys/{key_id}", summary="Revoke an API key for good (the record is kept for the audit trail)")
async def revoke_api_key(key_id: str, node: NodeDep, _: AdminUser) -> ApiKeyPublic:
    stored = await node.stores.users.get_api_key(key_id)
    stored = stored.revoke()
    await node.stores.users.update_api_key(stored)
    return _key_public(stored)
