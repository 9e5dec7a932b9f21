"""The embedded event bus: durable topics in SQLite that behave like Redis Streams.

A message's id is ``"<ms>-<seq>"``: the publish time in milliseconds (never going back within a
topic) and the ``bus_messages`` autoincrement, so ids increase within every topic. A consumer
group keeps the last id delivered to it; delivered, unacknowledged messages sit in
``bus_pending`` with their consumer, delivery count and last delivery time, until acknowledged
or claimed by another consumer.

A publish that finds its topic at ``maxlen`` messages makes room first, counting what it deletes
in ``stats().trimmed``: a topic without groups loses its oldest message; a topic with groups loses
every message below its *floor*, the lowest id some group still needs (its oldest pending message,
or the one after its last delivered). If nothing lies below the floor, the publish stores nothing
and raises ``BusFull`` (``stats().refused``), naming the group that holds the floor.

Readers waiting for new messages are woken by publishes in this process (embedded mode is one
process); ``block_s`` bounds the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from xueliang.gateway.stores._codec import decode_json, encode_json, parse_message_id
from xueliang.gateway.stores.base import JSON, BusFull, BusStats, Message
from xueliang.gateway.stores.sqlite.database import Database

_TOPIC_UPSERT = """
INSERT INTO bus_topics (topic, length, last_ms) VALUES (?, 1, ?)
ON CONFLICT (topic) DO UPDATE SET length = length + 1, last_ms = max(last_ms, excluded.last_ms)
RETURNING last_ms
"""
_TRIM_OLDEST = "DELETE FROM bus_messages WHERE id IN (SELECT id FROM bus_messages WHERE topic = ? ORDER BY id LIMIT ?)"
# Per group of the topic: the lowest message id it still needs (oldest pending, else next undelivered;
# a pending message was delivered, so it is never above ``last_id``).
_FLOORS = """
SELECT g.grp, coalesce(min(p.msg_id), g.last_id + 1) AS floor
FROM bus_groups g LEFT JOIN bus_pending p ON p.topic = g.topic AND p.grp = g.grp
WHERE g.topic = ? GROUP BY g.grp ORDER BY floor, g.grp
"""
_CLAIMABLE = """
SELECT p.msg_id, p.deliveries, m.ms, m.payload FROM bus_pending p JOIN bus_messages m ON m.id = p.msg_id
WHERE p.topic = ? AND p.grp = ? AND p.delivered_at <= ? ORDER BY p.msg_id LIMIT ?
"""


class SqliteEventBus:
    def __init__(self, db: Database, maxlen: int) -> None:
        self._db = db
        self.maxlen = maxlen
        self._stats = BusStats()
        self._wakeups: dict[str, asyncio.Event] = {}

    async def publish(self, topic: str, payload: JSON) -> str:
        text = encode_json(payload, f"bus topic {topic}")

        def publish(conn: sqlite3.Connection) -> tuple[str | None, int, int, str]:
            """(message id or None if refused, trimmed, backlog, group furthest behind)."""
            row = conn.execute("SELECT length FROM bus_topics WHERE topic = ?", (topic,)).fetchone()
            length = 0 if row is None else int(row[0])
            trimmed = 0
            if length >= self.maxlen:
                trimmed, slowest = self._make_room(conn, topic, length)
                length -= trimmed
                conn.execute("UPDATE bus_topics SET length = ? WHERE topic = ?", (length, topic))
                if length >= self.maxlen:
                    return None, trimmed, length, slowest  # the trim (if any) is kept: it was safe
            (ms,) = conn.execute(_TOPIC_UPSERT, (topic, int(time.time() * 1000))).fetchone()
            seq = conn.execute(
                "INSERT INTO bus_messages (topic, ms, payload) VALUES (?, ?, ?)", (topic, ms, text)
            ).lastrowid
            return f"{ms}-{seq}", trimmed, 0, ""

        message_id, trimmed, backlog, slowest = await self._db.write(publish)
        self._stats.trimmed += trimmed
        if message_id is None:
            self._stats.refused += 1
            raise BusFull(topic, backlog, self.maxlen, slowest)
        self._stats.published += 1
        if (wakeup := self._wakeups.pop(topic, None)) is not None:
            wakeup.set()
        return message_id

    def _make_room(self, conn: sqlite3.Connection, topic: str, length: int) -> tuple[int, str]:
        """Trim ``topic`` (at ``maxlen``) as the policy allows: (messages deleted, group furthest behind)."""
        floors = conn.execute(_FLOORS, (topic,)).fetchall()
        if not floors:  # nobody consumes the topic: the oldest go
            return conn.execute(_TRIM_OLDEST, (topic, length - self.maxlen + 1)).rowcount, ""
        slowest, floor = floors[0]  # nothing below the lowest floor is pending anywhere
        sql = "DELETE FROM bus_messages WHERE topic = ? AND id < ?"
        return conn.execute(sql, (topic, floor)).rowcount, str(slowest)

    async def read(
        self, topic: str, group: str, consumer: str, *, count: int = 100, block_s: float = 1.0
    ) -> list[Message]:
        deadline = time.monotonic() + block_s

        def read(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            conn.execute("INSERT INTO bus_groups (topic, grp) VALUES (?, ?) ON CONFLICT DO NOTHING", (topic, group))
            (last_id,) = conn.execute(
                "SELECT last_id FROM bus_groups WHERE topic = ? AND grp = ?", (topic, group)
            ).fetchone()
            sql = "SELECT id, ms, payload FROM bus_messages WHERE topic = ? AND id > ? ORDER BY id LIMIT ?"
            rows = conn.execute(sql, (topic, last_id, count)).fetchall()
            if rows:
                now = time.time()
                conn.executemany(
                    "INSERT OR REPLACE INTO bus_pending (topic, grp, msg_id, consumer, deliveries, delivered_at) "
                    "VALUES (?, ?, ?, ?, 1, ?)",
                    [(topic, group, row[0], consumer, now) for row in rows],
                )
                conn.execute(
                    "UPDATE bus_groups SET last_id = ? WHERE topic = ? AND grp = ?", (rows[-1][0], topic, group)
                )
            return rows

        while True:
            wakeup = self._wakeups.setdefault(topic, asyncio.Event())  # before reading: no lost wake-up
            rows = await self._db.write(read)
            remaining = deadline - time.monotonic()
            if rows or remaining <= 0:
                return [Message(topic, f"{ms}-{seq}", decode_json(payload)) for seq, ms, payload in rows]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await wakeup.wait()

    async def ack(self, topic: str, group: str, ids: Sequence[str]) -> None:
        rows = [(topic, group, parse_message_id(topic, message_id)[1]) for message_id in ids]
        if rows:
            sql = "DELETE FROM bus_pending WHERE topic = ? AND grp = ? AND msg_id = ?"
            await self._db.write(lambda conn: conn.executemany(sql, rows))

    async def claim_stale(
        self, topic: str, group: str, consumer: str, *, min_idle_s: float, count: int = 100
    ) -> list[Message]:
        def claim(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            now = time.time()
            rows = conn.execute(_CLAIMABLE, (topic, group, now - min_idle_s, count)).fetchall()
            conn.executemany(
                "UPDATE bus_pending SET consumer = ?, deliveries = deliveries + 1, delivered_at = ? "
                "WHERE topic = ? AND grp = ? AND msg_id = ?",
                [(consumer, now, topic, group, row[0]) for row in rows],
            )
            return rows

        rows = await self._db.write(claim)
        return [
            Message(topic, f"{ms}-{seq}", decode_json(payload), deliveries + 1) for seq, deliveries, ms, payload in rows
        ]

    async def pending(self, topic: str, group: str) -> int:
        sql = "SELECT count(*) FROM bus_pending WHERE topic = ? AND grp = ?"
        return int(await self._db.run(lambda conn: conn.execute(sql, (topic, group)).fetchone()[0]))

    async def stats(self) -> BusStats:
        return BusStats(self._stats.published, self._stats.trimmed, self._stats.refused)
