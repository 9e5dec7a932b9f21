"""A forwarding process for the SIGKILL test: ``python -m tests.events.forwarder_proc TMP INTAKE_URL``.

Runs ``CaseService`` (forwarder included) on the SQLite outbox and event store under TMP until
SIGTERM; SIGKILL leaves whatever it was doing half done, which is the point.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

from xueliang.events.service import CaseService
from xueliang.gateway.stores.sqlite.database import Database
from xueliang.gateway.stores.sqlite.outbox import SqliteOutbox

from .conftest import make_settings


async def main(tmp: Path, intake_url: str) -> None:
    db = await Database.open(tmp / "gateway.sqlite3")
    service = CaseService(make_settings(tmp, intake_url, concurrency=3, lease_s=2.0), SqliteOutbox(db))
    await service.start()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, service.stop)
    print("ready", flush=True)
    await service.run()
    await service.close()
    await db.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
