"""The reference intake's clock: advances case statuses and calls the gateway back, signed.

Every ``tick_s``: due cases move one step along ``steps`` (received -> dispatched -> handling ->
closed by default, ``step_s`` apart), each move queued as a callback; then pending callbacks are
POSTed to ``callback_url``, each body unique (it carries its send time) and signed with the
callback secret. A callback that fails stays pending and is tried again next tick.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from xueliang.events.intake.settings import IntakeSettings
from xueliang.events.intake.store import IntakeStore
from xueliang.events.models import CaseStatus
from xueliang.events.signing import signed_headers
from xueliang.events.status import callback_body

log = logging.getLogger(__name__)


class Progress:
    def __init__(self, settings: IntakeSettings, store: IntakeStore) -> None:
        self.settings = settings
        self.store = store
        self._steps = [str(s) for s in settings.steps]

    async def tick(self, client: httpx.AsyncClient | None) -> None:
        await self.store.advance(self._steps, self.settings.step_s, datetime.now(UTC))
        if client is None:
            return
        path = urlsplit(self.settings.callback_url).path or "/"
        secret = self.settings.callback_secret_value()
        for event_id, code, status, at, note in await self.store.pending_callbacks():
            body = callback_body(code, CaseStatus(status), event_id=event_id, note=note, at=datetime.fromisoformat(at))
            headers = {
                "Content-Type": "application/json",
                **signed_headers(self.settings.callback_key_id, secret, "POST", path, body),
            }
            if self.settings.callback_api_key is not None:
                headers["X-API-Key"] = self.settings.callback_api_key.get_secret_value()
            try:
                response = await client.post(self.settings.callback_url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                log.info("case %s: callback %s failed: %s; retrying next tick", code, event_id, exc)
                await self.store.callback_done(event_id, ok=False)
                await self.store.count("callbacks_failed")
                return  # the gateway is unreachable: wait for the next tick
            ok = response.status_code < 300 or response.status_code == 404  # 404: the gateway does not know it
            await self.store.callback_done(event_id, ok=ok)
            await self.store.count("callbacks_sent" if ok else "callbacks_failed")

    async def run(self) -> None:
        client = httpx.AsyncClient(timeout=httpx.Timeout(2.0)) if self.settings.callback_url else None
        try:
            while True:
                await self.tick(client)
                await asyncio.sleep(self.settings.tick_s)
        finally:
            if client is not None:
                await client.aclose()
