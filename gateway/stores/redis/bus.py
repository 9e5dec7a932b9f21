"""The event bus on Redis Streams: one stream ``bus:<topic>`` per topic, one field ``p`` (JSON).

Publish is one Lua script (atomic, so nodes publishing at once cannot overfill a topic): below
``maxlen`` it is XLEN + XADD. At ``maxlen``, a stream without groups loses its oldest entry
(``XTRIM MAXLEN``); a stream with groups is trimmed with ``XTRIM MINID`` at its *floor*, the
lowest id some group still needs: from XINFO GROUPS, the entry after each group's last-delivered
id, and from XPENDING, each group's oldest pending entry. If nothing lies below the floor, nothing
is added and the script says so; ``publish`` raises ``BusFull`` naming the group at the floor.
That trim runs only when the topic is full, and removes everything consumed, so with consumers
keeping up it runs once per ``maxlen`` publishes. ``stats()`` counts what XTRIM removed and the
refusals. Groups are created on first use at id 0 (MKSTREAM): a new group starts from the oldest
message kept. ``claim_stale`` is XAUTOCLAIM, with the delivery counts read back from XPENDING.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import redis.exceptions

from xueliang.gateway.stores._codec import decode_json, encode_json, parse_message_id
from xueliang.gateway.stores.base import JSON, BusFull, BusStats, Message
from xueliang.gateway.stores.redis.connection import MAX_BLOCK_S, RedisConnection, is_missing_group

# KEYS[1] the stream; ARGV: maxlen, payload. Returns {"ok", id, trimmed} or {"full", trimmed, backlog, group}.
_PUBLISH = """
local key, maxlen = KEYS[1], tonumber(ARGV[1])
local length, trimmed = redis.call('XLEN', key), 0
if length >= maxlen then
    local groups = redis.call('XINFO', 'GROUPS', key)  -- the stream exists: length >= maxlen >= 100
    if #groups == 0 then
        trimmed = redis.call('XTRIM', key, 'MAXLEN', maxlen - 1)
    else
        local floor_ms, floor_seq, slowest = nil, nil, nil
        for _, fields in ipairs(groups) do
            local info = {}
            for i = 1, #fields, 2 do info[fields[i]] = fields[i + 1] end
            local ms, seq = string.match(info['last-delivered-id'], '^(%d+)-(%d+)$')
            ms, seq = tonumber(ms), tonumber(seq) + 1
            if tonumber(info['pending']) > 0 then
                local oldest = redis.call('XPENDING', key, info['name'])[2]
                local p_ms, p_seq = string.match(oldest, '^(%d+)-(%d+)$')
                p_ms, p_seq = tonumber(p_ms), tonumber(p_seq)
                if p_ms < ms or (p_ms == ms and p_seq < seq) then ms, seq = p_ms, p_seq end
            end
            if floor_ms == nil or ms < floor_ms or (ms == floor_ms and seq < floor_seq) then
                floor_ms, floor_seq, slowest = ms, seq, info['name']
            end
        end
        trimmed = redis.call('XTRIM', key, 'MINID', string.format('%d-%d', floor_ms, floor_seq))
        if length - trimmed >= maxlen then return {'full', trimmed, length - trimmed, slowest} end
    end
end
return {'ok', redis.call('XADD', key, '*', 'p', ARGV[2]), trimmed}
"""


class RedisEventBus:
    def __init__(self, conn: RedisConnection, maxlen: int) -> None:
        self._c = conn
        self.maxlen = maxlen
        self._stats = BusStats()
        self._groups: set[tuple[str, str]] = set()  # groups known to exist
        self._publish = conn.client.register_script(_PUBLISH)

    async def publish(self, topic: str, payload: JSON) -> str:
        text = encode_json(payload, f"bus topic {topic}")
        key = self._c.key("bus", topic)
        with self._c.mapped(f"publishing to bus topic {topic}"):
            answer: list[Any] = await self._publish(keys=[key], args=[self.maxlen, text])
        self._stats.trimmed += int(answer[2] if answer[0] == "ok" else answer[1])
        if answer[0] != "ok":
            self._stats.refused += 1
            raise BusFull(topic, int(answer[2]), self.maxlen, str(answer[3]))
        self._stats.published += 1
        return str(answer[1])

    async def read(
        self, topic: str, group: str, consumer: str, *, count: int = 100, block_s: float = 1.0
    ) -> list[Message]:
        key = self._c.key("bus", topic)
        deadline = time.monotonic() + block_s
        with self._c.mapped(f"reading bus topic {topic} for group {group}"):
            await self._ensure_group(topic, group)
            while True:
                remaining = deadline - time.monotonic()
                block_ms = round(min(remaining, MAX_BLOCK_S) * 1000) if remaining > 0 else None
                try:
                    answer: Any = await self._c.client.xreadgroup(
                        group, consumer, {key: ">"}, count=count, block=block_ms or None
                    )
                except redis.exceptions.ResponseError as exc:
                    if not is_missing_group(exc):
                        raise
                    self._groups.discard((topic, group))  # the stream was deleted: start over
                    await self._ensure_group(topic, group)
                    continue
                entries = answer[0][1] if answer else []
                if entries or deadline - time.monotonic() <= 0:
                    return [Message(topic, message_id, decode_json(fields.get("p"))) for message_id, fields in entries]

    async def ack(self, topic: str, group: str, ids: Sequence[str]) -> None:
        for message_id in ids:
            parse_message_id(topic, message_id)
        if ids:
            with self._c.mapped(f"acknowledging on bus topic {topic} for group {group}"):
                await self._c.client.xack(self._c.key("bus", topic), group, *ids)

    async def claim_stale(
        self, topic: str, group: str, consumer: str, *, min_idle_s: float, count: int = 100
    ) -> list[Message]:
        key = self._c.key("bus", topic)
        min_idle_ms = max(0, round(min_idle_s * 1000))
        claimed: list[tuple[str, dict[str, str]]] = []
        cursor = "0-0"
        with self._c.mapped(f"claiming stale messages of bus topic {topic} for group {group}"):
            try:
                while len(claimed) < count:  # each XAUTOCLAIM scans at most 10 x count entries
                    answer: list[Any] = await self._c.client.xautoclaim(
                        key, group, consumer, min_idle_ms, start_id=cursor, count=count - len(claimed)
                    )
                    cursor = answer[0]
                    claimed += [(message_id, fields) for message_id, fields in answer[1] if message_id is not None]
                    if cursor == "0-0":
                        break
            except redis.exceptions.ResponseError as exc:
                if is_missing_group(exc):
                    return []
                raise
            deliveries = await self._deliveries(key, group, consumer, [message_id for message_id, _ in claimed])
        return [
            Message(topic, message_id, decode_json(fields.get("p")), deliveries.get(message_id, 2))
            for message_id, fields in claimed
        ]

    async def pending(self, topic: str, group: str) -> int:
        with self._c.mapped(f"counting pending messages of bus topic {topic} for group {group}"):
            try:
                summary = await self._c.client.xpending(self._c.key("bus", topic), group)
            except redis.exceptions.ResponseError as exc:
                if is_missing_group(exc):
                    return 0
                raise
        return int(summary["pending"])

    async def stats(self) -> BusStats:
        return BusStats(self._stats.published, self._stats.trimmed, self._stats.refused)

    async def _ensure_group(self, topic: str, group: str) -> None:
        if (topic, group) in self._groups:
            return
        await self._c.create_group(self._c.key("bus", topic), group)
        self._groups.add((topic, group))

    async def _deliveries(self, key: str, group: str, consumer: str, ids: list[str]) -> dict[str, int]:
        """Delivery counts of ``ids`` (just claimed by ``consumer``), by id."""
        if not ids:
            return {}
        async with self._c.client.pipeline(transaction=False) as pipe:
            for message_id in ids:
                pipe.xpending_range(key, group, min=message_id, max=message_id, count=1, consumername=consumer)
            answers: list[list[dict[str, Any]]] = await pipe.execute()
        return {row["message_id"]: int(row["times_delivered"]) for rows in answers for row in rows}
