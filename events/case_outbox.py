"""``CaseOutbox``: a stored case into the gateway's outbox under its code, never sent as another case.

    cases_out = CaseOutbox(outbox, store, wake=forwarder.wake, on_case=on_case)
    await cases_out.enqueue(case, mapping.apply(case))   # the case becomes queued, or dead
    refusal = await cases_out.resend_refusal(case)       # None: the operator's retry may go ahead

The outbox item is ``{"case": <the case as JSON>, "body": <the intake's body>}`` keyed by the case
code; ``add`` is idempotent by the code, so adding a case again (after a crash) is a no-op. When the
outbox already holds ANOTHER case (another incident) under the code (two nodes sharing
``codes.node_tag``), sending this one as that one would lose it silently: it goes ``dead`` with a
reason the operator can act on, and the operator's retry of it is refused too.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from xueliang.events.models import Case, CaseStatus, StatusEntry
from xueliang.events.outbox import OutboxEntry, OutboxPort
from xueliang.events.store import EventStore

log = logging.getLogger(__name__)


class CaseOutbox:
    def __init__(
        self,
        outbox: OutboxPort,
        store: EventStore,
        *,
        wake: Callable[[], None],
        on_case: Callable[[Case], Awaitable[None]] | None = None,
    ) -> None:
        self.outbox = outbox
        self.store = store
        self._wake = wake  # the forwarder: something new to send
        self._on_case = on_case

    async def enqueue(self, case: Case, body: dict[str, Any]) -> None:
        """Add the stored case with its intake ``body``; it becomes ``queued`` (or ``dead`` on a code
        collision)."""
        payload = {"case": case.model_dump(mode="json"), "body": body}
        added = await self.outbox.add(case.code, payload)
        if not added:
            held = _held_case(await self.outbox.get(case.code))
            if held.get("incident_id") != case.incident_id:
                await self._code_collision(case, held)
                return
        note = "in the outbox" if added else "in the outbox (already there)"
        await self.store.apply_status(case.code, StatusEntry(status=CaseStatus.QUEUED, at=datetime.now(UTC), note=note))
        self._wake()
        if self._on_case is not None:
            await self._on_case(case)

    async def _code_collision(self, case: Case, held: dict[str, Any]) -> None:
        """The outbox holds ANOTHER case under this code (two nodes sharing a node tag): this one is
        never sent in its place; it goes dead with a reason the operator can act on."""
        other = _describe(held)
        log.error(
            "case %s: code collision: this case (incident %s, camera %s) and the one already in the outbox "
            "(%s) share the code; set a unique events.codes.node_tag per node. This case is marked dead",
            case.code,
            case.incident_id,
            case.camera_id,
            other,
        )
        note = (
            f"案件编号冲突：发件箱中已有同号的另一案件（{other}），请为每个节点设置唯一的 events.codes.node_tag / "
            f"case code collision: the outbox holds another case ({other}) under this code; "
            "set a unique events.codes.node_tag per node"
        )
        entry = StatusEntry(status=CaseStatus.DEAD, at=datetime.now(UTC), note=note, source="gateway")
        dead, _ = await self.store.apply_status(case.code, entry)
        if self._on_case is not None:
            await self._on_case(dead)

    async def resend_refusal(self, case: Case) -> str | None:
        """Why ``case`` must not be re-sent under its code, or None when the outbox item under the
        code is this case's own (the operator's retry may go ahead).

        After a code collision (``_code_collision``) the item under the code is ANOTHER case's:
        retrying it would re-send that case (or refuse it as "not dead"), never this one. Raises the
        gateway's ``NotFound`` when nothing is in the outbox under the code."""
        held = _held_case(await self.outbox.get(case.code))
        if held.get("incident_id") == case.incident_id:
            return None
        other = _describe(held)
        log.warning(
            "case %s: retry refused: the outbox item under this code is another case (%s), not this one (incident %s)",
            case.code,
            other,
            case.incident_id,
        )
        return (
            f"案件编号冲突：发件箱中编号 {case.code} 下是另一案件（{other}），本案件不能以此编号重新发送；"
            "请为每个节点设置唯一的 events.codes.node_tag / "
            f"case code collision: the outbox item under {case.code} is another case ({other}), so this case "
            "cannot be re-sent under this code; set a unique events.codes.node_tag per node"
        )


def _held_case(item: OutboxEntry) -> dict[str, Any]:
    """The case an outbox item carries (``enqueue`` writes ``{"case": ..., "body": ...}``); {} if none."""
    held = item.payload.get("case")
    return held if isinstance(held, dict) else {}


def _describe(held: dict[str, Any]) -> str:
    """The held case as an operator tells it apart: its incident and camera."""
    return f"incident {held.get('incident_id', '?')}, camera {held.get('camera_id', '?')}"
