"""Dependencies declared once as typed aliases: the node, the caller, and role checks.

``Allowed(Role.TECHNICIAN)`` lets technicians and admins in; admins pass every role check.
Authentication: ``Authorization: Bearer <login token>`` for people, ``X-API-Key: xlk_...`` (or
``Bearer xlk_...``) for machine clients.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from xueliang.gateway.casework import CaseWork
from xueliang.gateway.errors import AuthError, NotFound
from xueliang.gateway.models import Role
from xueliang.gateway.node import Node
from xueliang.gateway.security import API_KEY_PREFIX, Principal, api_key_id, api_key_matches

bearer = HTTPBearer(auto_error=False, description="Login token from POST /api/auth/login")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key of a machine client")

MAX_OFFSET = 2**31 - 1  # the largest paging offset: far past any registry; larger ones overflow the stores' integers


def get_node(request: Request) -> Node:
    node: Node = request.state.node
    return node


NodeDep = Annotated[Node, Depends(get_node)]


#: answers to people are Chinese first, English second (as the wall shows them)
USER_DISABLED = "用户已停用，请联系管理员 / user disabled: ask an administrator"


def unauthorized(reason: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=reason, headers={"WWW-Authenticate": "Bearer"})


async def _principal_from_api_key(node: Node, key: str) -> Principal:
    try:
        stored = await node.stores.users.get_api_key(api_key_id(key))
    except (NotFound, AuthError) as exc:
        raise unauthorized("API 密钥未知 / API key unknown") from exc
    if stored.disabled or not api_key_matches(key, stored.key_hash):
        raise unauthorized("API 密钥未知或已停用 / API key unknown or disabled")
    return Principal(name=f"apikey:{stored.key_id}", role=stored.role)


async def get_principal(
    request: Request,
    node: NodeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    api_key: Annotated[str | None, Depends(api_key_header)],
) -> Principal:
    """The authenticated caller; 401 (audited by the middleware) when there is none."""
    token = credentials.credentials if credentials else None
    if api_key or (token and token.startswith(API_KEY_PREFIX + "_")):
        principal = await _principal_from_api_key(node, api_key or token or "")
    elif token:
        try:
            principal = node.tokens.verify(token)
        except AuthError as exc:
            raise unauthorized(f"登录已失效，请重新登录 / {exc}") from exc
        try:
            user = await node.stores.users.get_user(principal.name)
        except NotFound as exc:
            raise unauthorized("用户已不存在 / user no longer exists") from exc
        if user.disabled:
            raise unauthorized(USER_DISABLED)
        principal = Principal(name=user.username, role=user.role)
    else:
        raise unauthorized(
            "需要登录或 API 密钥 / authentication required: log in (POST /api/auth/login) or send an API key"
        )
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def Allowed(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets ``roles`` (and admins) in, and answers 403 to everyone else."""
    names = ", ".join(sorted({r.value for r in (*roles, Role.ADMIN)}))

    async def check(principal: CurrentPrincipal) -> Principal:
        if principal.role is not Role.ADMIN and principal.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"无权执行此操作（当前角色 {principal.role.value}，需要 {names}）/ "
                f"role {principal.role.value} may not do this; needs {names}",
            )
        return principal

    return check


async def get_case_work(node: NodeDep) -> CaseWork:
    """The node's case side; 503 when it is not running here (in scale-out: names the node that runs it)."""
    if node.cases is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "本节点未运行案件服务 / the case service is not running on this node"
        )
    if not node.cases.role.leading:
        holder = await node.stores.leases.holder(node.cases.role.name)
        where = f"node {holder}" if holder else "no node yet (starting)"
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"案件服务在其他节点运行（{holder or '尚未启动'}），请访问该节点 / "
            f"the case service runs on {where}: ask that node",
        )
    return node.cases


CaseWorkDep = Annotated[CaseWork, Depends(get_case_work)]

AdminUser = Annotated[Principal, Depends(Allowed(Role.ADMIN))]
Technician = Annotated[Principal, Depends(Allowed(Role.TECHNICIAN))]
Operator = Annotated[Principal, Depends(Allowed(Role.OPERATOR))]
Staff = Annotated[Principal, Depends(Allowed(Role.OPERATOR, Role.TECHNICIAN))]
IntakeClient = Annotated[Principal, Depends(Allowed(Role.INTAKE))]
