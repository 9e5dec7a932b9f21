"""The wall's dependency: its runtime, from ``app.state.wall`` (set by ``attach_wall``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from xueliang.api.wall.runtime import Wall


def get_wall(request: Request) -> Wall:
    wall = getattr(request.app.state, "wall", None)
    if not isinstance(wall, Wall):
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="本节点未启用视频墙：请联系技术人员 / the live wall is not attached to this node",
        )
    return wall


WallDep = Annotated[Wall, Depends(get_wall)]
