"""The work behind ``xueliang users ...``, on the node's stores, audited as the local operator."""

from __future__ import annotations

import re
import secrets

import typer

from xueliang.gateway.cli.options import actor
from xueliang.gateway.errors import GatewayError, NotFound
from xueliang.gateway.models import USERNAME_PATTERN, USERNAME_RULE, ApiKey, Role, User
from xueliang.gateway.node import open_node
from xueliang.gateway.settings import Settings

USERNAME = re.compile(USERNAME_PATTERN)  # the API's rule (POST /api/users)


def _role(name: str) -> Role:
    try:
        role = Role(name)
    except ValueError:
        role = None
    if role is None or role is Role.INTAKE:
        raise typer.BadParameter(f"unknown role {name!r}; use one of admin, technician, operator", param_hint="--role")
    return role


async def add(settings: Settings, username: str, role_name: str, password: str | None) -> str:
    """Add ``username``; ``password`` None: a random one (returned, to be shown once)."""
    if not USERNAME.fullmatch(username):
        raise typer.BadParameter(f"{username!r} is not {USERNAME_RULE}; choose another", param_hint="USERNAME")
    role = _role(role_name)
    if password == "":
        raise typer.BadParameter(
            "nothing read from stdin; pipe it in: ... | xueliang users add NAME --password-stdin",
            param_hint="--password-stdin",
        )
    password = secrets.token_urlsafe(12) if password is None else password
    if len(password) < 10:
        raise typer.BadParameter("the password is too short; use at least 10 characters", param_hint="--password-stdin")
    async with open_node(settings) as node:
        user = User(username=username, password_hash=await node.passwords.hash(password), role=role)
        try:
            await node.stores.users.add_user(user)
        except GatewayError:
            await node.audit(actor(), "users.add", "error", target=username)
            raise
        await node.audit(actor(), "users.add", "ok", target=username, detail=role.value)
    return password


async def list_all(settings: Settings) -> list[User]:
    async with open_node(settings) as node:
        return await node.stores.users.list_users()


async def set_disabled(settings: Settings, username: str, *, disabled: bool) -> None:
    async with open_node(settings) as node:
        user = await node.stores.users.get_user(username)
        await node.stores.users.update_user(user.model_copy(update={"disabled": disabled}))
        await node.audit(actor(), "users.disable" if disabled else "users.enable", "ok", target=username)


async def list_keys(settings: Settings) -> list[ApiKey]:
    async with open_node(settings) as node:
        return await node.stores.users.list_api_keys()


async def revoke_key(settings: Settings, key_id: str) -> None:
    """Revoke for good, like ``DELETE /api/api-keys/{key_id}``: disabled, its hash erased, record kept."""
    async with open_node(settings) as node:
        try:
            key = await node.stores.users.get_api_key(key_id)
            await node.stores.users.update_api_key(key.revoke())
        except NotFound as exc:
            await node.audit(actor(), "api_keys.revoke", "error", target=key_id)
            raise NotFound(f"API key {key_id} does not exist; `xueliang users keys` lists the key ids") from exc
        await node.audit(actor(), "api_keys.revoke", "ok", target=key_id, detail=key.name)
