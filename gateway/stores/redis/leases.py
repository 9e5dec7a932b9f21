"""Singleton-role leases in Redis: ``lease:<role>`` holds the holder's name with a PX expiry.

Taking a free lease is ``SET NX PX``; renewing and releasing compare the holder first, in Lua,
so a holder whose lease expired and was taken over can neither extend nor drop the new one.
"""

from __future__ import annotations

from xueliang.gateway.stores.redis.connection import RedisConnection

# KEYS[1] the lease; ARGV: holder, ttl ms. Returns 1 if the holder holds it now.
_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLeases:
    def __init__(self, conn: RedisConnection) -> None:
        self._c = conn
        self._acquire = conn.client.register_script(_ACQUIRE)
        self._release = conn.client.register_script(_RELEASE)

    async def acquire(self, role: str, holder: str, ttl_s: float) -> bool:
        ttl_ms = max(1, round(ttl_s * 1000))
        with self._c.mapped(f"acquiring lease {role} for {holder}"):
            return bool(await self._acquire(keys=[self._c.key("lease", role)], args=[holder, ttl_ms]))

    async def release(self, role: str, holder: str) -> None:
        with self._c.mapped(f"releasing lease {role} of {holder}"):
            await self._release(keys=[self._c.key("lease", role)], args=[holder])

    async def holder(self, role: str) -> str | None:
        with self._c.mapped(f"reading lease {role}"):
            value = await self._c.client.get(self._c.key("lease", role))
        return None if value is None else str(value)
