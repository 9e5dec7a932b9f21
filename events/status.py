"""The status loop (closed loop 受理、转办、办理、督办、办结): what the intake reports back, kept as history.

Two ways in, both idempotent by the intake's event id:

- a signed callback: ``StatusTracker.handle_callback(method, path, headers, body)`` is what the
  API route calls; it verifies key id, signature and timestamp window, refuses a replay (the same
  signature within the window), then applies the status. Refusals raise ``CallbackRejected`` with the
  HTTP status to answer (401 signature/replay, 400 bad body, 404 unknown case);
- polling the intake's status endpoint (``poll_once``), when ``status.poll_interval_s`` is set: a
  round of at most ``limit`` cases goes on where the last one stopped, so every open case is reached.

The case status only moves forward (a late "received" after "handling" is history, not a
regression). ``check_overdue`` flags open cases past their deadline once (``overdue_at`` and a
history note). ``public_view`` is what the QR code's page shows: no camera, no picture, no address.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from xueliang.events.errors import CallbackRejected, CaseNotFound, SignatureRejected
from xueliang.events.models import (
    INTAKE_STATUSES,
    Case,
    CaseStatus,
    PublicCaseView,
    PublicStatusEntry,
    StatusEntry,
)
from xueliang.events.settings import CallbackSettings, ForwarderSettings
from xueliang.events.signing import ReplayGuard, signed_headers, verify
from xueliang.events.store import EventStore

log = logging.getLogger(__name__)
OPEN_AT_INTAKE = (
    CaseStatus.SENT,
    CaseStatus.RECEIVED,
    CaseStatus.DISPATCHED,
    CaseStatus.HANDLING,
    CaseStatus.SUPERVISED,
)


class StatusReport(BaseModel):
    """One progress report from the intake (callback body, or one history item when polled)."""

    model_config = ConfigDict(extra="ignore")

    code: str = ""
    status: CaseStatus
    at: datetime
    note: str = ""
    event_id: str = ""


class CallbackResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    status: CaseStatus
    changed: bool


class StatusTracker:
    """Applies the intake's reports to the store; flags overdue cases; builds the public view."""

    def __init__(
        self,
        store: EventStore,
        callback: CallbackSettings,
        *,
        on_change: Callable[[Case], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self.settings = callback
        self.replays = ReplayGuard(callback.window_s, callback.replay_cache)
        self._on_change = on_change
        self.refused = 0
        self._poll_after = ""  # the code the last poll round reached

    async def apply(self, code: str, report: StatusReport, source: str) -> tuple[Case, bool]:
        entry = StatusEntry(
            status=report.status, at=report.at, note=report.note, source=source, event_id=report.event_id
        )
        case, changed = await self.store.apply_status(code, entry)
        if changed:
            log.info("case %s: status %s (%s)", code, case.status, source)
            if self._on_change is not None:
                await self._on_change(case)
        return case, changed

    async def handle_callback(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None
    ) -> CallbackResult:
        """Verify and apply one signed callback; raises ``CallbackRejected``."""
        secrets = {self.settings.key_id: self.settings.secret.get_secret_value()}
        try:
            _, signature = verify(headers, method, path, body, secrets, window_s=self.settings.window_s, now=now)
            self.replays.check(signature, now=now)
        except SignatureRejected as exc:
            self.refused += 1
            log.warning("status callback refused: %s", exc.reason)
            raise CallbackRejected(exc.reason, 401) from exc
        try:
            report = StatusReport.model_validate_json(body)
        except ValidationError as exc:
            self.refused += 1
            raise CallbackRejected(
                f"callback body is not a status report: {exc.errors(include_url=False)[:3]}", 400
            ) from exc
        if not report.code or report.status not in INTAKE_STATUSES:
            self.refused += 1
            raise CallbackRejected(f"callback needs a case code and one of {sorted(INTAKE_STATUSES)}", 400)
        try:
            case, changed = await self.apply(report.code, report, "callback")
        except CaseNotFound as exc:
            self.refused += 1
            raise CallbackRejected(f"no case {report.code}", 404) from exc
        return CallbackResult(code=case.code, status=case.status, changed=changed)

    async def apply_receipt(self, code: str, receipt: Mapping[str, Any], sent_at: datetime | None = None) -> None:
        """The forwarder delivered: SENT, and whatever status the receipt states.

        SENT is stamped when the request went out (``sent_at``, this node's clock), so the history
        reads in the order things happened; for a duplicate (an earlier attempt got there, its answer
        was lost) the intake's ``received_at`` of that attempt, when earlier, is the better bound."""
        now = datetime.now(UTC)
        received_at = _parse_at(receipt.get("received_at"))
        sent = sent_at or now
        if receipt.get("duplicate") is True and received_at is not None:
            sent = min(sent, received_at)
        accepted = StatusReport(status=CaseStatus.SENT, at=sent, note="accepted by the intake")
        await self.apply(code, accepted, "forwarder")
        status = receipt.get("status")
        if status in {s.value for s in INTAKE_STATUSES}:
            event_id = str(receipt.get("event_id") or f"receipt-{code}")
            at = received_at or now
            await self.apply(code, StatusReport(status=CaseStatus(status), at=at, event_id=event_id), "forwarder")

    async def poll_once(self, client: httpx.AsyncClient, forwarder: ForwarderSettings, *, limit: int = 200) -> int:
        """Read the status of up to ``limit`` cases still open at the intake; returns how many changed.

        Each round goes on after the last case the previous one reached (code order, wrapping round at
        the end), so every open case, old or new, is polled within ceil(open / limit) rounds."""
        changed = 0
        secret = forwarder.secret.get_secret_value()
        codes = await self.store.case_codes_after(OPEN_AT_INTAKE, self._poll_after, limit)
        for code in codes:
            path = forwarder.status_path.format(code=code)
            headers = signed_headers(forwarder.key_id, secret, "GET", path, b"")
            try:
                response = await client.get(path, headers=headers)
            except httpx.HTTPError as exc:
                log.warning("case %s: polling the intake failed: %s", code, exc)
                return changed  # the intake is unreachable; the next poll goes on from this case
            self._poll_after = code
            if response.status_code != 200:
                log.warning("case %s: status poll answered HTTP %s", code, response.status_code)
                continue
            try:
                history = response.json().get("history", [])
                reports = [StatusReport.model_validate(item) for item in history]
            except (ValueError, AttributeError, ValidationError) as exc:
                log.warning("case %s: status poll answer is not understood: %s", code, exc)
                continue
            for report in reports:
                if report.status in INTAKE_STATUSES:
                    _, moved = await self.apply(code, report, "poll")
                    changed += moved
        if len(codes) < limit:
            self._poll_after = ""  # the end reached: the next round starts from the first open case
        return changed

    async def check_overdue(self, now: datetime | None = None) -> list[Case]:
        flagged = await self.store.mark_overdue(now or datetime.now(UTC))
        for case in flagged:
            log.warning("case %s: overdue (due %s, status %s)", case.code, case.due_at.isoformat(), case.status)
        return flagged

    async def public_view(self, code: str) -> PublicCaseView:
        """What the public status page shows; raises ``CaseNotFound``."""
        return public_view(await self.store.get_case(code))


def public_view(case: Case) -> PublicCaseView:
    history: list[PublicStatusEntry] = []
    for entry in case.history:
        if entry.source == "overdue-check" or (history and history[-1].status == entry.status):
            continue
        history.append(PublicStatusEntry(status=entry.status, at=entry.at))
    return PublicCaseView(
        code=case.code,
        grade=case.grade,
        category_code=case.category_code,
        category_zh=case.category_zh,
        category_en=case.category_en,
        status=case.status,
        overdue=case.overdue_at is not None,
        district=case.location.district,
        township=case.location.township,
        history=history,
    )


def _parse_at(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)  # an intake's naive time: UTC


def callback_body(code: str, status: CaseStatus, *, event_id: str, note: str = "", at: datetime | None = None) -> bytes:
    """A callback body as the intake sends it (used by the reference intake and tests)."""
    moment = at or datetime.now(UTC)
    return json.dumps(
        {
            "code": code,
            "status": str(status),
            "at": moment.isoformat(),
            "note": note,
            "event_id": event_id,
            "sent": time.time(),
        },
        ensure_ascii=False,
    ).encode()
