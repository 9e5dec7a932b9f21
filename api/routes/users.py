"""Users and API keys (admins only)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from xueliang.api.deps import AdminUser, NodeDep
from xueliang.gateway.models import ApiKey, Role, User
from xueliang.gateway.security import new_api_key

router = APIRouter(prefix="/api", tags=["users"])

USERNAME = r"^[A-Za-z0-9_.\-]{2,64}$"


class UserPublic(BaseModel):
    username: str
    role: Role
    disabled: bool
    created_at: datetime


class UserCreate(BaseModel):
    username: str = Field(pattern=USERNAME, description="2-64 letters, digits, _ . -")
    password: str = Field(min_length=10, max_length=256, description="At least 10 characters")
    role: Role


class UserUpdate(BaseModel):
    role: Role | None = None
    disabled: bool | None = None
    password: str | None = Field(None, min_length=10, max_length=256)


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: Role = Role.INTAKE


class ApiKeyPublic(BaseModel):
    key_id: str
    name: str
    role: Role
    disabled: bool
    created_at: datetime


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="Shown once; store it in the client now")


def _public(user: User) -> UserPublic:
    return UserPublic(username=user.username, role=user.role, disabled=user.disabled, created_at=user.created_at)


@router.get("/users", summary="List users")
async def list_users(node: NodeDep, _: AdminUser) -> list[UserPublic]:
    return [_public(u) for u in await node.stores.users.list_users()]


@router.post("/users", status_code=status.HTTP_201_CREATED, summary="Add a user")
async def add_user(body: UserCreate, node: NodeDep, _: AdminUser) -> UserPublic:
    user = User(username=body.username, password_hash=await node.passwords.hash(body.password), role=body.role)
    await node.stores.users.add_user(user)
    return _public(user)


@router.patch("/users/{username}", summary="Change a user's role, password, or disable it")
async def update_user(username: str, body: UserUpdate, node: NodeDep, _: AdminUser) -> UserPublic:
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
    return _public(user)


@router.get("/api-keys", summary="List API keys (without the keys)")
async def list_api_keys(node: NodeDep, _: AdminUser) -> list[ApiKeyPublic]:
    return [ApiKeyPublic.model_validate(k.model_dump()) for k in await node.stores.users.list_api_keys()]


@router.post("/api-keys", status_code=status.HTTP_201_CREATED, summary="Create an API key for a machine client")
async def create_api_key(body: ApiKeyCreate, node: NodeDep, _: AdminUser) -> ApiKeyCreated:
    key, key_id, key_hash = new_api_key()
    stored = ApiKey(key_id=key_id, name=body.name, key_hash=key_hash, role=body.role)
    await node.stores.users.add_api_key(stored)
    return ApiKeyCreated(key=key, **ApiKeyPublic.model_validate(stored.model_dump()).model_dump())
