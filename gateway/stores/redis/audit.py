"""The audit log in Redis: a capped sorted set ``audit`` scored by the entry's time.

Members are ``<insertion seq, 16 digits>|<entry JSON>``, so entries with the same time keep
their insertion order and identical entries stay distinct. Past ``maxlen`` entries the oldest are
removed (the embedded store keeps everything; export the log if it must be kept longer).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from xueliang.gateway.models import AuditEntry
from xueliang.gateway.stores._codec import to_epoch
from xueliang.gateway.stores.redis.connection import RedisConnection

DEFAULT_MAXLEN = 200_000
_PAGE = 500

# KEYS: log, seq; ARGV: score, entry JSON, maxlen.
_RECORD = """
local n = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], ARGV[1], string.format('%016d', n) .. '|' .. ARGV[2])
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[3])
if excess > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, excess - 1) end
return n
"""


class RedisAuditLog:
    def __init__(self, conn: RedisConnection, maxlen: int = DEFAULT_MAXLEN) -> None:
        self._c = conn
        self.maxlen = maxlen
        self._keys = [conn.key("audit"), conn.key("audit", "seq")]
        self._record = conn.client.register_script(_RECORD)

    async def record(self, entry: AuditEntry) -> None:
        with self._c.mapped(f"recording audit entry {entry.action} by {entry.actor}"):
            await self._record(keys=self._keys, args=[repr(to_epoch(entry.at)), entry.model_dump_json(), self.maxlen])

    async def query(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        low = "-inf" if since is None else repr(to_epoch(since))
        found: list[AuditEntry] = []
        offset = 0
        with self._c.mapped("querying the audit log"):
            while len(found) < limit:
                page: Any = await self._c.client.zrevrangebyscore(self._keys[0], "+inf", low, start=offset, num=_PAGE)
                for member in page:
                    entry = AuditEntry.model_validate_json(member.partition("|")[2])
                    if (actor is None or entry.actor == actor) and (action is None or entry.action == action):
                        found.append(entry)
                if len(page) < _PAGE:
                    break
                offset += _PAGE
        return found[: max(limit, 0)]
