"""Zones of a camera: where (normalised polygon), when (hour windows) and how (thresholds) the rules
look. Replaced as a whole; each zone is validated (points inside 0..1, no crossing edges, area)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from xueliang.api.deps import NodeDep, Staff, Technician
from xueliang.inference.zones import Zone

router = APIRouter(prefix="/api/cameras", tags=["zones"])


class ZoneList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    zones: list[Zone] = Field(max_length=64, description="Every zone of the camera (replaces the old list)")

    @model_validator(mode="after")
    def _unique_ids(self) -> ZoneList:
        ids = [zone.id for zone in self.zones]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"zone ids must be unique per camera; repeated: {', '.join(duplicates)}")
        return self


@router.get("/{camera_id}/zones", summary="The camera's zones")
async def get_zones(camera_id: str, node: NodeDep, _: Staff) -> ZoneList:
    return ZoneList(zones=(await node.stores.cameras.get(camera_id)).zones)


@router.put("/{camera_id}/zones", summary="Replace the camera's zones (validated; the patrol picks them up)")
async def put_zones(camera_id: str, body: ZoneList, node: NodeDep, _: Technician) -> ZoneList:
    camera = await node.stores.cameras.get(camera_id)
    await node.stores.cameras.upsert(camera.model_copy(update={"zones": body.zones, "updated_at": datetime.now(UTC)}))
    return body
