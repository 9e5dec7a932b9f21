"""The durable outbox in Redis.

Keys: ``outbox:item:<key>`` a hash per item; ``outbox:due`` a sorted set key -> when it may be
claimed (its next attempt while pending, its lease end while sending); ``outbox:st:<status>``
and ``outbox:all`` sorted sets key -> creation sequence (``outbox:seq``), for listing newest
first and counting. Every change is one Lua script, so ``claim`` leases each due item to exactly
one sender and the indexes always agree with the items. Times are the callers' clocks (epoch
seconds), as are ``retry_at`` values: keep the nodes' clocks in sync (NTP). A failure reported for
an item that is already delivered changes nothing: delivery wins.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from xueliang.gateway.errors import Conflict, NotFound
from xueliang.gateway.stores._codec import decode_json, encode_json, from_epoch, to_epoch
from xueliang.gateway.stores.base import JSON, OutboxItem, OutboxStatus
from xueliang.gateway.stores.redis.connection import RedisConnection

# Shared head of the scripts that change one item: ARGV[1] prefix, ARGV[2] key.
_HEAD = """
local p, key = ARGV[1], ARGV[2]
local item = p .. 'outbox:item:' .. key
local old = redis.call('HGET', item, 'status')
local function move(new)
    local seq = redis.call('HGET', item, 'seq')
    redis.call('HSET', item, 'status', new)
    if old ~= new then
        redis.call('ZREM', p .. 'outbox:st:' .. old, key)
        redis.call('ZADD', p .. 'outbox:st:' .. new, seq, key)
    end
end
"""

# ARGV: prefix, key, payload, now. Returns 1 if added.
_ADD = """
local p, key = ARGV[1], ARGV[2]
local item = p .. 'outbox:item:' .. key
if redis.call('EXISTS', item) == 1 then return 0 end
local seq = redis.call('INCR', p .. 'outbox:seq')
redis.call('HSET', item, 'key', key, 'payload', ARGV[3], 'status', 'pending', 'attempts', 0, 'next_at', ARGV[4],
           'created_at', ARGV[4], 'seq', seq, 'last_error', '', 'response', '{}', 'sender', '')
redis.call('ZADD', p .. 'outbox:due', ARGV[4], key)
redis.call('ZADD', p .. 'outbox:st:pending', seq, key)
redis.call('ZADD', p .. 'outbox:all', seq, key)
return 1
"""

# ARGV: prefix, sender, now, lease end, limit. Returns the leased items' HGETALLs.
_CLAIM = """
local p = ARGV[1]
local due = p .. 'outbox:due'
local out = {}
for _, key in ipairs(redis.call('ZRANGEBYSCORE', due, '-inf', ARGV[3], 'LIMIT', 0, tonumber(ARGV[5]))) do
    local item = p .. 'outbox:item:' .. key
    local old = redis.call('HGET', item, 'status')
    if old then
        local seq = redis.call('HGET', item, 'seq')
        redis.call('HSET', item, 'status', 'sending', 'sender', ARGV[2])
        redis.call('ZADD', due, ARGV[4], key)
        if old ~= 'sending' then
            redis.call('ZREM', p .. 'outbox:st:' .. old, key)
            redis.call('ZADD', p .. 'outbox:st:sending', seq, key)
        end
        out[#out + 1] = redis.call('HGETALL', item)
    else
        redis.call('ZREM', due, key)
    end
end
return out
"""

# ARGV: prefix, key, now, response. Returns 0 if missing.
_DELIVERED = (
    _HEAD
    + """
if not old then return 0 end
move('delivered')
redis.call('HINCRBY', item, 'attempts', 1)
redis.call('HSET', item, 'delivered_at', ARGV[3], 'response', ARGV[4], 'sender', '')
redis.call('ZREM', p .. 'outbox:due', key)
return 1
"""
)

# ARGV: prefix, key, error, retry at ('' for dead). Returns 0 if missing.
_FAILED = (
    _HEAD
    + """
if not old then return 0 end
if old == 'delivered' then return 1 end
redis.call('HINCRBY', item, 'attempts', 1)
redis.call('HSET', item, 'last_error', ARGV[3], 'sender', '')
if ARGV[4] == '' then
    move('dead')
    redis.call('ZREM', p .. 'outbox:due', key)
else
    move('pending')
    redis.call('HSET', item, 'next_at', ARGV[4])
    redis.call('ZADD', p .. 'outbox:due', ARGV[4], key)
end
return 1
"""
)

# ARGV: prefix, key, now. Returns 'ok', 'missing' or the status that is not dead.
_RETRY = (
    _HEAD
    + """
if not old then return 'missing' end
if old ~= 'dead' then return old end
move('pending')
redis.call('HSET', item, 'attempts', 0, 'next_at', ARGV[3])
redis.call('ZADD', p .. 'outbox:due', ARGV[3], key)
return 'ok'
"""
)


def _item(fields: Mapping[str, str]) -> OutboxItem:
    delivered = fields.get("delivered_at")
    return OutboxItem(
        key=fields["key"],
        payload=decode_json(fields["payload"]),
        status=OutboxStatus(fields["status"]),
        attempts=int(fields["attempts"]),
        next_attempt_at=from_epoch(float(fields["next_at"])),
        last_error=fields.get("last_error", ""),
        created_at=from_epoch(float(fields["created_at"])),
        delivered_at=from_epoch(float(delivered)) if delivered else None,
        response=decode_json(fields.get("response")),
    )


def _pairs(flat: builtins.list[str]) -> dict[str, str]:
    return dict(zip(flat[0::2], flat[1::2], strict=True))


class RedisOutbox:
    def __init__(self, conn: RedisConnection) -> None:
        self._c = conn
        client = conn.client
        self._add, self._claim = client.register_script(_ADD), client.register_script(_CLAIM)
        self._delivered, self._failed = client.register_script(_DELIVERED), client.register_script(_FAILED)
        self._retry = client.register_script(_RETRY)

    async def add(self, key: str, payload: JSON) -> bool:
        text = encode_json(payload, f"outbox item {key}")
        with self._c.mapped(f"adding outbox item {key}"):
            return bool(await self._add(args=[self._c.prefix, key, text, repr(time.time())]))

    async def claim(self, sender: str, *, limit: int, lease_s: float) -> builtins.list[OutboxItem]:
        now = time.time()
        with self._c.mapped(f"claiming outbox items for {sender}"):
            rows = await self._claim(args=[self._c.prefix, sender, repr(now), repr(now + lease_s), limit])
        return sorted((_item(_pairs(row)) for row in rows), key=lambda item: (item.next_attempt_at, item.key))

    async def mark_delivered(self, key: str, response: Mapping[str, Any]) -> None:
        text = encode_json(response, f"outbox item {key} response")
        with self._c.mapped(f"marking outbox item {key} delivered"):
            found = await self._delivered(args=[self._c.prefix, key, repr(time.time()), text])
        if not found:
            raise NotFound(f"outbox item {key} does not exist")

    async def mark_failed(self, key: str, error: str, *, retry_at: datetime | None) -> None:
        retry = "" if retry_at is None else repr(to_epoch(retry_at))
        with self._c.mapped(f"marking outbox item {key} failed"):
            found = await self._failed(args=[self._c.prefix, key, error, retry])
        if not found:
            raise NotFound(f"outbox item {key} does not exist")

    async def retry(self, key: str) -> None:
        with self._c.mapped(f"retrying outbox item {key}"):
            answer = await self._retry(args=[self._c.prefix, key, repr(time.time())])
        if answer == "missing":
            raise NotFound(f"outbox item {key} does not exist")
        if answer != "ok":
            raise Conflict(f"outbox item {key} is {answer}, not dead; only dead items can be retried")

    async def get(self, key: str) -> OutboxItem:
        with self._c.mapped(f"reading outbox item {key}"):
            fields: Any = await self._c.client.hgetall(self._c.key("outbox", "item", key))
        if not fields:
            raise NotFound(f"outbox item {key} does not exist")
        return _item(fields)

    async def list(self, status: OutboxStatus | None = None, limit: int = 100) -> builtins.list[OutboxItem]:
        index = self._c.key("outbox", "all") if status is None else self._c.key("outbox", "st", str(status))
        with self._c.mapped("listing the outbox"):
            keys: Any = await self._c.client.zrevrange(index, 0, limit - 1) if limit > 0 else []
            async with self._c.client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hgetall(self._c.key("outbox", "item", key))
                rows: builtins.list[dict[str, str]] = await pipe.execute()
        return [_item(fields) for fields in rows if fields]

    async def counts(self) -> dict[OutboxStatus, int]:
        with self._c.mapped("counting the outbox"):
            async with self._c.client.pipeline(transaction=False) as pipe:
                for status in OutboxStatus:
                    pipe.zcard(self._c.key("outbox", "st", str(status)))
                counts = await pipe.execute()
        return {status: int(n) for status, n in zip(OutboxStatus, counts, strict=True)}
