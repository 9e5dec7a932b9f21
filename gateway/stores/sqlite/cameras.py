"""The camera registry in SQLite: the record as JSON, the fields queries filter on as columns."""

from __future__ import annotations

import builtins
import sqlite3
from typing import Any

from xueliang.gateway.errors import Conflict, NotFound
from xueliang.gateway.models import CameraQuery, CameraRecord, CameraStatus
from xueliang.gateway.stores._codec import camera_index_values, camera_search_text, query_filters, query_needle
from xueliang.gateway.stores.sqlite.database import Database

_UPSERT = """
INSERT INTO cameras (id, host, port, status, region_code, township, grid_code, category, name, search_text, record)
VALUES (:id, :host, :port, :status, :region_code, :township, :grid_code, :category, :name, :search_text, :record)
ON CONFLICT (id) DO UPDATE SET
    host = excluded.host, port = excluded.port, status = excluded.status, region_code = excluded.region_code,
    township = excluded.township, grid_code = excluded.grid_code, category = excluded.category,
    name = excluded.name, search_text = excluded.search_text, record = excluded.record
"""


def _where(query: CameraQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in query_filters(query).items():  # column names come from our own table
        clauses.append(f"{column} = ?")
        params.append(value)
    needle = query_needle(query)
    if needle is not None:
        clauses.append("instr(search_text, ?) > 0")
        params.append(needle)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


class SqliteCameraRegistry:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def upsert(self, camera: CameraRecord) -> None:
        row = {
            "id": camera.id,
            "host": camera.host,
            "port": camera.port,
            "name": camera.name,
            "search_text": camera_search_text(camera),
            "record": camera.model_dump_json(),
            **camera_index_values(camera),
        }

        def upsert(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(_UPSERT, row)
            except sqlite3.IntegrityError as exc:
                other = conn.execute(
                    "SELECT id FROM cameras WHERE host = ? AND port = ?", (camera.host, camera.port)
                ).fetchone()
                raise Conflict(
                    f"camera {camera.id}: address {camera.host}:{camera.port} is already registered as camera "
                    f"{other[0] if other else '?'}; delete that one or correct the address"
                ) from exc

        await self._db.write(upsert)

    async def get(self, camera_id: str) -> CameraRecord:
        def get(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT record FROM cameras WHERE id = ?", (camera_id,)).fetchone()
            return None if row is None else str(row[0])

        record = await self._db.run(get)
        if record is None:
            raise NotFound(f"camera {camera_id} is not registered")
        return CameraRecord.model_validate_json(record)

    async def find_by_address(self, host: str, port: int) -> CameraRecord | None:
        def find(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT record FROM cameras WHERE host = ? AND port = ?", (host, port)).fetchone()
            return None if row is None else str(row[0])

        record = await self._db.run(find)
        return None if record is None else CameraRecord.model_validate_json(record)

    async def list(self, query: CameraQuery) -> builtins.list[CameraRecord]:
        where, params = _where(query)
        sql = f"SELECT record FROM cameras{where} ORDER BY id LIMIT ? OFFSET ?"

        def select(conn: sqlite3.Connection) -> builtins.list[str]:
            return [str(row[0]) for row in conn.execute(sql, (*params, query.limit, query.offset))]

        return [CameraRecord.model_validate_json(record) for record in await self._db.run(select)]

    async def count(self, query: CameraQuery) -> int:
        where, params = _where(query)
        sql = f"SELECT count(*) FROM cameras{where}"
        return int(await self._db.run(lambda conn: conn.execute(sql, params).fetchone()[0]))

    async def delete(self, camera_id: str) -> None:
        def delete(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM cameras WHERE id = ?", (camera_id,)).rowcount

        if await self._db.run(delete) == 0:
            raise NotFound(f"camera {camera_id} is not registered")

    async def status_counts(self) -> dict[CameraStatus, int]:
        def counts(conn: sqlite3.Connection) -> dict[str, int]:
            return {str(s): int(n) for s, n in conn.execute("SELECT status, count(*) FROM cameras GROUP BY status")}

        found = await self._db.run(counts)
        return {status: found.get(str(status), 0) for status in CameraStatus}
