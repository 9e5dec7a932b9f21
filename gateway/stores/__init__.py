"""The gateway's stores: pick the backend the node's mode asks for.

``embedded`` -> SQLite at ``settings.sqlite_file`` (the data directory is created) with an
in-process job queue; ``scaleout`` -> Redis at ``storage.redis_url``. Both implement the
protocols in ``base``; close the ``Stores`` once when the node stops (``async with`` works)::

    async with await open_stores(settings) as stores:
        ...
"""

from __future__ import annotations

from xueliang.gateway.errors import StoreUnavailable
from xueliang.gateway.settings import Settings
from xueliang.gateway.stores.base import Stores


async def open_stores(settings: Settings) -> Stores:
    """Open the stores for ``settings.node.mode``; ``StoreUnavailable`` says what to fix if they cannot be."""
    if settings.node.mode == "scaleout":
        from xueliang.gateway.stores.redis import open_redis_stores

        return await open_redis_stores(settings.storage)
    from xueliang.gateway.stores.sqlite import open_sqlite_stores

    path = settings.sqlite_file
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailable(
            f"cannot create the data directory {path.parent} ({exc.strerror}); "
            "set node.data_dir to a writable directory"
        ) from exc
    return await open_sqlite_stores(path, settings.storage)


__all__ = ["Stores", "open_stores"]
