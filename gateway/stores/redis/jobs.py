"""The scale-out job queue: a Redis stream ``jobs`` read by the consumer group ``workers``.

Keys: ``jobs`` (entries ``key``/``payload``, deleted when acknowledged, so XLEN = waiting +
in flight) and ``jobs:waiting`` (a hash key -> entry id of the jobs not yet taken, which is what
coalescing looks at). ``put`` and ``take`` are Lua scripts, so the capacity check, the
coalescing hash and the stream never disagree:

- put: coalesced if the key is waiting; refused if XLEN >= capacity (policy *refuse newest*,
  counted per process); else XADD and remember the key.
- take: first a job idle longer than ``visibility_s`` (XPENDING IDLE + XCLAIM, which re-checks
  the idle time, so two nodes never both take it over); else the next new entry (XREADGROUP).
  With nothing to hand out, the caller waits on XREAD BLOCK for an entry newer than the last
  one, in slices no longer than the visibility timeout so expired jobs are not left waiting.

A node that dies with jobs taken leaves them pending; another node takes them after
``visibility_s``.
"""

from __future__ import annotations

import time
from typing import Any

import redis.exceptions

from xueliang.gateway.errors import StoreError
from xueliang.gateway.stores._codec import decode_json, encode_json
from xueliang.gateway.stores.base import JSON, Job, QueueStats
from xueliang.gateway.stores.redis.connection import MAX_BLOCK_S, RedisConnection, is_missing_group

GROUP = "workers"

# KEYS: stream, waiting; ARGV: key, payload JSON, capacity. Returns the entry id, 'coalesced' or 'refused'.
_PUT = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 'coalesced' end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[3]) then return 'refused' end
local id = redis.call('XADD', KEYS[1], '*', 'key', ARGV[1], 'payload', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], id)
return id
"""

# KEYS: stream, waiting; ARGV: group, consumer, visibility ms.
# Returns {id, key, payload, deliveries}, or {'', last id of the stream} when there is nothing.
_TAKE = """
local stale = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], '-', '+', 1)
if #stale > 0 then
    local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], stale[1][1])
    if #claimed > 0 and claimed[1] then
        local f = claimed[1][2]
        return {claimed[1][1], f[2], f[4], stale[1][4] + 1}
    end
end
local new = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 1, 'STREAMS', KEYS[1], '>')
if new then
    local entry = new[1][2][1]
    local key = entry[2][2]
    if redis.call('HGET', KEYS[2], key) == entry[1] then redis.call('HDEL', KEYS[2], key) end
    return {entry[1], key, entry[2][4], 1}
end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then return {'', info[i + 1]} end
end
return {'', '0-0'}
"""


class RedisJobQueue:
    def __init__(self, conn: RedisConnection, capacity: int, visibility_s: float) -> None:
        self._c = conn
        self.capacity = capacity
        self.visibility_s = visibility_s
        self._stream = conn.key("jobs")
        self._keys = [self._stream, conn.key("jobs", "waiting")]
        self._put = conn.client.register_script(_PUT)
        self._take = conn.client.register_script(_TAKE)
        self._refused = 0
        self._coalesced = 0

    async def create_group(self) -> None:
        """Create the stream and its group if they do not exist (idempotent)."""
        with self._c.mapped("creating the job queue"):
            await self._c.create_group(self._stream, GROUP)

    async def put(self, key: str, payload: JSON) -> bool:
        text = encode_json(payload, f"job {key}")
        with self._c.mapped(f"queueing job {key}"):
            answer = await self._put(keys=self._keys, args=[key, text, self.capacity])
        if answer == "coalesced":
            self._coalesced += 1
            return False
        if answer == "refused":
            self._refused += 1
            return False
        return True

    async def take(self, consumer: str, timeout_s: float) -> Job | None:
        deadline = time.monotonic() + timeout_s
        visibility_ms = max(1, round(self.visibility_s * 1000))
        with self._c.mapped(f"taking a job for {consumer}"):
            while True:
                answer = await self._take_once(consumer, visibility_ms)
                if answer[0]:
                    job_id, key, payload, deliveries = answer
                    return Job(str(job_id), str(key), decode_json(payload), int(deliveries))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                wait_s = min(remaining, self.visibility_s, MAX_BLOCK_S)
                await self._c.client.xread({self._stream: answer[1]}, count=1, block=max(1, round(wait_s * 1000)))

    async def ack(self, job: Job) -> None:
        with self._c.mapped(f"acknowledging job {job.key}"):
            async with self._c.client.pipeline(transaction=True) as pipe:
                pipe.xack(self._stream, GROUP, job.id)
                pipe.xdel(self._stream, job.id)
                await pipe.execute()

    async def stats(self) -> QueueStats:
        with self._c.mapped("reading job queue statistics"):
            async with self._c.client.pipeline(transaction=True) as pipe:
                pipe.xlen(self._stream)
                pipe.xpending(self._stream, GROUP)
                try:
                    length, pending = await pipe.execute()
                except redis.exceptions.ResponseError as exc:  # the group is gone (FLUSHDB): nothing queued
                    if not is_missing_group(exc):
                        raise
                    length, pending = 0, {"pending": 0}
        in_flight = int(pending["pending"])
        return QueueStats(
            depth=int(length) - in_flight, in_flight=in_flight, refused=self._refused, coalesced=self._coalesced
        )

    async def _take_once(self, consumer: str, visibility_ms: int) -> list[Any]:
        for _ in range(2):
            try:
                answer: list[Any] = await self._take(keys=self._keys, args=[GROUP, consumer, visibility_ms])
                return answer
            except redis.exceptions.ResponseError as exc:
                if not is_missing_group(exc):
                    raise
                await self.create_group()  # the stream was deleted under us: recreate and retry once
        raise StoreError(f"job queue {self._stream}: its consumer group {GROUP} keeps disappearing")
