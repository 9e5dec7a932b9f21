"""Login for people; the caller's identity."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field

from xueliang.api.deps import USER_DISABLED, CurrentPrincipal, NodeDep, unauthorized
from xueliang.gateway.node import get_user_or_none
from xueliang.gateway.security import Principal

router = APIRouter(prefix="/api/auth", tags=["auth"])


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: str


class Me(BaseModel):
    name: str
    role: str


@router.post("/login", summary="Exchange username and password for a bearer token")
async def login(body: LoginRequest, node: NodeDep, request: Request) -> TokenResponse:
    request.state.actor_hint = body.username
    keys = (f"user:{body.username}", f"address:{request.client.host if request.client else '?'}")
    wait = node.logins.wait_s(*keys)
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"登录失败次数过多，请 {wait:.0f} 秒后再试 / too many failed logins; try again in {wait:.0f} s",
            headers={"Retry-After": str(max(1, round(wait)))},
        )
    user = await get_user_or_none(node, body.username)
    valid = (
        await node.passwords.verify(user.password_hash, body.password)
        if user is not None
        else await node.passwords.verify_nobody(body.password)
    )
    if user is None or not valid:
        node.logins.failed(*keys)
        raise unauthorized("用户名或密码错误 / wrong username or password")
    node.logins.succeeded(keys[0])
    if user.disabled:
        raise unauthorized(USER_DISABLED)
    principal = Principal(user.username, user.role)
    request.state.principal = principal
    token, ttl = node.tokens.issue(principal)
    return TokenResponse(access_token=token, expires_in=ttl, role=user.role.value)


@router.get("/me", summary="Who am I")
async def me(principal: CurrentPrincipal) -> Me:
    return Me(name=principal.name, role=principal.role.value)
