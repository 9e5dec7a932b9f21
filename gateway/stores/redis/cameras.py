"""The camera registry in Redis.

Keys (under the prefix): ``cam:<id>`` a hash with the record as JSON plus the values it is
indexed under; ``cams`` a sorted set of every id (score 0: ordered by id, paged with ZRANGEBYLEX);
``cams:idx:<index>:<value>`` a set of ids per status, region, township, grid and category;
``cams:addr:<host>:<port>`` the id at that address; ``cams:text`` a hash id -> the case-folded
text ``search`` matches. Upsert and delete are Lua scripts, so the indexes never disagree with
the records and two cameras can never take the same address.
"""

from __future__ import annotations

import builtins
from typing import Any

from xueliang.gateway.errors import Conflict, NotFound
from xueliang.gateway.models import CameraQuery, CameraRecord, CameraStatus
from xueliang.gateway.stores._codec import (
    CAMERA_INDEXES,
    camera_index_values,
    camera_search_text,
    query_filters,
    query_needle,
)
from xueliang.gateway.stores.redis.connection import RedisConnection

INDEX_NAMES = tuple(index for _, index in CAMERA_INDEXES)

# ARGV: prefix, id, json, addr, text, then one value per index (INDEX_NAMES order) and their names.
# Returns nil, or the id of the other camera at that address.
_UPSERT = """
local p, id, addr, n = ARGV[1], ARGV[2], ARGV[4], (#ARGV - 5) / 2
local cam = p .. 'cam:' .. id
local owner = redis.call('GET', p .. 'cams:addr:' .. addr)
if owner and owner ~= id then return owner end
local old_addr = redis.call('HGET', cam, 'addr')
if old_addr and old_addr ~= addr then redis.call('DEL', p .. 'cams:addr:' .. old_addr) end
for i = 1, n do
    local name, value = ARGV[5 + n + i], ARGV[5 + i]
    local old = redis.call('HGET', cam, name)
    if old then redis.call('SREM', p .. 'cams:idx:' .. name .. ':' .. old, id) end
    redis.call('SADD', p .. 'cams:idx:' .. name .. ':' .. value, id)
    redis.call('HSET', cam, name, value)
end
redis.call('HSET', cam, 'json', ARGV[3], 'addr', addr)
redis.call('SET', p .. 'cams:addr:' .. addr, id)
redis.call('HSET', p .. 'cams:text', id, ARGV[5])
redis.call('ZADD', p .. 'cams', 0, id)
return false
"""

# ARGV: prefix, id, then the index names. Returns 1 if it was there.
_DELETE = """
local p, id = ARGV[1], ARGV[2]
local cam = p .. 'cam:' .. id
local addr = redis.call('HGET', cam, 'addr')
if not addr then return 0 end
for i = 3, #ARGV do
    local old = redis.call('HGET', cam, ARGV[i])
    if old then redis.call('SREM', p .. 'cams:idx:' .. ARGV[i] .. ':' .. old, id) end
end
if redis.call('GET', p .. 'cams:addr:' .. addr) == id then redis.call('DEL', p .. 'cams:addr:' .. addr) end
redis.call('HDEL', p .. 'cams:text', id)
redis.call('ZREM', p .. 'cams', id)
redis.call('DEL', cam)
return 1
"""


class RedisCameraRegistry:
    def __init__(self, conn: RedisConnection) -> None:
        self._c = conn
        self._upsert = conn.client.register_script(_UPSERT)
        self._delete = conn.client.register_script(_DELETE)

    async def upsert(self, camera: CameraRecord) -> None:
        indexed = camera_index_values(camera)
        args = [
            self._c.prefix,
            camera.id,
            camera.model_dump_json(),
            f"{camera.host}:{camera.port}",
            camera_search_text(camera),
            *(indexed[name] for name in INDEX_NAMES),
            *INDEX_NAMES,
        ]
        with self._c.mapped(f"saving camera {camera.id}"):
            owner = await self._upsert(args=args)
        if owner is not None:
            raise Conflict(
                f"camera {camera.id}: address {camera.host}:{camera.port} is already registered as camera "
                f"{owner}; delete that one or correct the address"
            )

    async def get(self, camera_id: str) -> CameraRecord:
        with self._c.mapped(f"reading camera {camera_id}"):
            record = await self._c.client.hget(self._c.key("cam", camera_id), "json")
        if record is None:
            raise NotFound(f"camera {camera_id} is not registered")
        return CameraRecord.model_validate_json(record)

    async def find_by_address(self, host: str, port: int) -> CameraRecord | None:
        with self._c.mapped(f"looking up camera at {host}:{port}"):
            camera_id: Any = await self._c.client.get(self._c.key("cams", "addr", f"{host}:{port}"))
            if camera_id is None:
                return None
            record = await self._c.client.hget(self._c.key("cam", camera_id), "json")
        return None if record is None else CameraRecord.model_validate_json(record)

    async def list(self, query: CameraQuery) -> builtins.list[CameraRecord]:
        with self._c.mapped("listing cameras"):
            if not query_filters(query) and query_needle(query) is None:
                page: Any = await self._c.client.zrangebylex(
                    self._c.key("cams"), "-", "+", start=query.offset, num=query.limit
                )
            else:
                page = (await self._matching(query))[query.offset : query.offset + query.limit]
            if not page:
                return []
            async with self._c.client.pipeline(transaction=False) as pipe:
                for camera_id in page:
                    pipe.hget(self._c.key("cam", camera_id), "json")
                records = await pipe.execute()
        return [CameraRecord.model_validate_json(record) for record in records if record is not None]

    async def count(self, query: CameraQuery) -> int:
        filters = query_filters(query)
        with self._c.mapped("counting cameras"):
            if query_needle(query) is not None:
                return len(await self._matching(query))
            if filters:
                return int(await self._c.client.sintercard(len(filters), [*self._index_keys(filters)]))
            return int(await self._c.client.zcard(self._c.key("cams")))

    async def delete(self, camera_id: str) -> None:
        with self._c.mapped(f"deleting camera {camera_id}"):
            found = await self._delete(args=[self._c.prefix, camera_id, *INDEX_NAMES])
        if not found:
            raise NotFound(f"camera {camera_id} is not registered")

    async def status_counts(self) -> dict[CameraStatus, int]:
        with self._c.mapped("counting cameras by status"):
            async with self._c.client.pipeline(transaction=False) as pipe:
                for status in CameraStatus:
                    pipe.scard(self._c.key("cams", "idx", "status", str(status)))
                counts = await pipe.execute()
        return {status: int(n) for status, n in zip(CameraStatus, counts, strict=True)}

    def _index_keys(self, filters: dict[str, str]) -> builtins.list[str]:
        return [self._c.key("cams", "idx", name, value) for name, value in filters.items()]

    async def _matching(self, query: CameraQuery) -> builtins.list[str]:
        """Ids matching ``query``'s filters and search, sorted (call inside ``mapped``)."""
        filters = query_filters(query)
        needle = query_needle(query)
        texts = self._c.key("cams", "text")
        if filters:
            found_ids: Any = await self._c.client.sinter(self._index_keys(filters))
            ids: builtins.list[str] = builtins.list(found_ids)
            if needle is not None and ids:
                found = await self._c.client.hmget(texts, ids)
                ids = [camera_id for camera_id, text in zip(ids, found, strict=True) if text and needle in text]
        else:
            everything: Any = await self._c.client.hgetall(texts)
            ids = [camera_id for camera_id, text in everything.items() if needle is None or needle in text]
        return sorted(ids)
