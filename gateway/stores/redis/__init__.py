"""The scale-out stores on Redis (``redis.asyncio``): streams for the bus and the job queue,
hashes and sets for the registry, Lua scripts wherever a change touches more than one key.

Modules, one store each: ``connection`` (client, key prefix, error mapping), ``cameras``,
``users``, ``audit``, ``bus``, ``jobs``, ``outbox``, ``leases``. Needs Redis >= 7.0.
"""

from __future__ import annotations

from xueliang.gateway.settings import StorageSettings
from xueliang.gateway.stores.base import Stores
from xueliang.gateway.stores.redis.audit import RedisAuditLog
from xueliang.gateway.stores.redis.bus import RedisEventBus
from xueliang.gateway.stores.redis.cameras import RedisCameraRegistry
from xueliang.gateway.stores.redis.connection import RedisConnection, redact
from xueliang.gateway.stores.redis.jobs import RedisJobQueue
from xueliang.gateway.stores.redis.leases import RedisLeases
from xueliang.gateway.stores.redis.outbox import RedisOutbox
from xueliang.gateway.stores.redis.users import RedisUserStore

__all__ = ["RedisConnection", "open_redis_stores", "redact"]


async def open_redis_stores(storage: StorageSettings) -> Stores:
    """Connect to ``storage.redis_url`` (one PING) and build the stores; ``StoreUnavailable`` if it does not answer."""
    conn = RedisConnection(storage.redis_url, storage.redis_prefix)
    try:
        await conn.check()
        jobs = RedisJobQueue(conn, storage.job_queue_capacity, storage.job_visibility_s)
        await jobs.create_group()
    except BaseException:
        await conn.close()
        raise
    return Stores(
        cameras=RedisCameraRegistry(conn),
        users=RedisUserStore(conn),
        audit=RedisAuditLog(conn),
        jobs=jobs,
        bus=RedisEventBus(conn, storage.bus_maxlen),
        outbox=RedisOutbox(conn),
        leases=RedisLeases(conn),
        backend="redis",
        closer=conn.close,
    )
