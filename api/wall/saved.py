"""Saved walls and tours, per operator: a JSON file per user under ``<data_dir>/walls/``.

Why a file and not a table: the stores belong to the gateway's store layer, and a wall layout is a
small per-user preference document. The page keeps a copy in the browser's ``localStorage`` (keyed
by user) so a wall opens even when the gateway is briefly unreachable; the server copy is the one
that follows the operator to another console. In scale-out, point ``node.data_dir`` of the nodes
at shared storage, or pin operators to a node, until the lead moves this into the stores.

Writes are atomic (temporary file, then rename). A file that cannot be parsed is never overwritten
silently: reading it fails with the path named, and the next save moves it aside to ``*.corrupt``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from xueliang.api.wall.errors import SavedWallError, SavedWallLimit
from xueliang.gateway.models import utcnow

log = logging.getLogger(__name__)

SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")
Layout = Literal[1, 4, 9, 16]
CameraId = Annotated[str, Field(min_length=1, max_length=128)]


class SavedWall(BaseModel):
    """A named wall: the layout and the camera in each tile (``None`` = empty tile)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=64, description="Shown in the wall list")
    layout: Layout = Field(4, description="Tiles: 1, 4, 9 or 16")
    cameras: list[CameraId | None] = Field(default_factory=list, max_length=16, description="Camera id per tile")


class Tour(BaseModel):
    """Cameras rotated through the wall, ``layout`` at a time, every ``interval_s`` seconds."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=64, description="Shown in the tour list")
    layout: Layout = Field(4, description="Tiles per step: 1, 4, 9 or 16")
    cameras: list[CameraId] = Field(..., min_length=1, max_length=1000, description="Camera ids in order")
    interval_s: int = Field(15, ge=5, le=3600, description="Seconds each step stays on the wall")


class WallDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    walls: list[SavedWall] = Field(default_factory=list)
    tours: list[Tour] = Field(default_factory=list)
    updated_at: datetime | None = None


class WallUpdate(WallDocument):
    """What ``PUT /api/wall/saved`` accepts: a document whose names the page can tell apart.

    Kept off ``WallDocument`` so that a file written before these checks still loads."""

    @model_validator(mode="after")
    def _names_usable(self) -> WallUpdate:
        for kind, names in (("wall", [w.name for w in self.walls]), ("tour", [t.name for t in self.tours])):
            if blank := [n for n in names if not n.strip()]:
                raise ValueError(f"{kind} name {blank[0]!r} is blank: give it a name the list can show")
            if dupes := sorted({n for n in names if names.count(n) > 1}):
                raise ValueError(f"{kind} name {dupes[0]!r} is used twice: each {kind} needs its own name")
        return self


class SavedWalls:
    def __init__(self, directory: Path, limit: int) -> None:
        self.directory = directory
        self.limit = limit
        self._locks: dict[str, asyncio.Lock] = {}

    def path(self, user: str) -> Path:
        name = user if SAFE_NAME.fullmatch(user) else "x-" + user.encode().hex()
        return self.directory / f"{name}.json"

    def _lock(self, user: str) -> asyncio.Lock:
        return self._locks.setdefault(user, asyncio.Lock())

    async def load(self, user: str) -> WallDocument:
        async with self._lock(user):
            return await asyncio.to_thread(self._read, self.path(user))

    async def save(self, user: str, document: WallDocument) -> WallDocument:
        if len(document.walls) + len(document.tours) > self.limit:
            raise SavedWallLimit(
                f"{len(document.walls) + len(document.tours)} walls and tours exceed the limit of {self.limit} "
                "per user (wall.saved_walls_per_user): delete some first"
            )
        stored = document.model_copy(update={"updated_at": utcnow()})
        async with self._lock(user):
            await asyncio.to_thread(self._write, self.path(user), stored)
        log.info("saved walls of %s: %d walls, %d tours", user, len(stored.walls), len(stored.tours))
        return stored

    @staticmethod
    def _read(path: Path) -> WallDocument:
        try:
            text = path.read_text("utf-8")
        except FileNotFoundError:
            return WallDocument()
        except OSError as exc:
            raise SavedWallError(f"cannot read saved walls {path}: {exc.strerror}") from exc
        try:
            return WallDocument.model_validate_json(text)
        except ValidationError as exc:
            raise SavedWallError(
                f"saved walls {path} are unreadable ({exc.error_count()} problems); the file is kept: "
                "fix or remove it (the next save moves it aside to *.corrupt)"
            ) from exc

    @staticmethod
    def _write(path: Path, document: WallDocument) -> None:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                try:
                    WallDocument.model_validate_json(path.read_text("utf-8"))
                except ValidationError:
                    path.replace(path.with_name(path.name + ".corrupt"))
            tmp.write_text(json.dumps(document.model_dump(mode="json"), ensure_ascii=False, indent=1), "utf-8")
            tmp.replace(path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise SavedWallError(f"cannot write saved walls {path}: {exc.strerror}") from exc
