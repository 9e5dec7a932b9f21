"""Routes of saved walls and tours (``GET``/``PUT /api/wall/saved``); storage in ``saved``."""

from __future__ import annotations

from fastapi import APIRouter

from xueliang.api.deps import Operator
from xueliang.api.wall.deps import WallDep
from xueliang.api.wall.saved import WallDocument, WallUpdate

router = APIRouter(prefix="/api/wall", tags=["wall"])


@router.get("/saved", summary="My saved walls and tours")
async def get_saved(principal: Operator, wall: WallDep) -> WallDocument:
    return await wall.saved.load(principal.name)


@router.put("/saved", summary="Replace my saved walls and tours")
async def put_saved(document: WallUpdate, principal: Operator, wall: WallDep) -> WallDocument:
    return await wall.saved.save(principal.name, document)
