"""Durable state of the case side: incidents, cases, case history, code sequences, the evidence index.

``EventStore`` is the protocol (a Redis version comes later); ``SqliteEventStore`` keeps everything
in one SQLite file in WAL mode, driven by ONE worker thread that owns the connection, so the event
loop never blocks on the disk and every write is serialised without locks.

Incidents are written through lazily: ``put_incident`` marks an incident dirty and a flush (after
``flush_delay_s``) writes all dirty incidents in one transaction. The pending set is keyed by
incident id, so it is bounded by the aggregator's ``max_live_incidents``; the latest state wins
(coalesced). An incident stops being dirty only once a write of its latest state succeeded: a
failed background flush is logged with the incident ids and tried again (backing off up to 30 s),
and ``flush()``/``close()`` raise ``EventStoreError`` while writing keeps failing. Cases, history,
sequences and evidence are committed before the awaited call returns.

After a restart ``live_incidents(closed_within_s=...)`` gives back the live incidents AND the
closed ones still possibly in their hold-down window (closed at most that long before the newest
observation on record), so a flapping incident re-opens instead of becoming a second one.

The file itself (owner lock, schema version, refusing a damaged or foreign file) is ``store_file``'s.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

from xueliang.events.errors import CaseNotFound, EventStoreError, IncidentNotFound
from xueliang.events.models import (
    STATUS_RANK,
    Case,
    CaseStatus,
    Grade,
    Incident,
    IncidentState,
    StatusEntry,
)
from xueliang.events.store_file import OwnerLock, open_store_file

T = TypeVar("T")
log = logging.getLogger(__name__)
_RETRY_CAP_S = 30.0  # longest wait before a failed background flush is tried again

LIVE_STATES = (IncidentState.OPEN, IncidentState.ACKNOWLEDGED, IncidentState.ESCALATED, IncidentState.DISMISSED)
# last_seen is ISO text in the observation's own offset: text order is time order within +-14 h
_OFFSET_SLACK = timedelta(hours=28)
_UPSERT_INCIDENT = (
    "INSERT INTO incidents(id, camera_id, state, last_seen, data) VALUES (?,?,?,?,?) "
    "ON CONFLICT(id) DO UPDATE SET state=excluded.state, last_seen=excluded.last_seen, data=excluded.data"
)
_INSERT_EVIDENCE = "INSERT OR REPLACE INTO evidence(code, path, sha256, bytes, created_at) VALUES (?,?,?,?,?)"
_INSERT_HISTORY = "INSERT OR IGNORE INTO case_history(code, status, at, note, source, event_id) VALUES (?,?,?,?,?,?)"


@dataclasses.dataclass(frozen=True, slots=True)
class EvidenceRow:
    code: str
    path: str
    sha256: str
    bytes: int
    created_at: datetime


class EventStore(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    def put_incident(self, incident: Incident) -> None:
        """Write-through, coalesced; durable after the next flush."""

    async def flush(self) -> None: ...
    async def get_incident(self, incident_id: str) -> Incident:
        """Raises ``IncidentNotFound``."""

    async def live_incidents(self, *, closed_within_s: float = 0.0) -> list[Incident]:
        """The live incidents, and the closed ones that may still be in their hold-down window: closed
        at most ``closed_within_s`` (quiet + hold-down) before the newest observation on record
        (a few more may come back; the aggregator drops those past their window)."""

    async def next_sequence(self, scope: str) -> int:
        """Next number of ``scope`` (1, 2, ...), committed before it returns."""

    async def create_case(self, case: Case, incident: Incident) -> bool:
        """Case + first history + evidence index + the incident, in one transaction.
        False (and no change) if the code exists: idempotent."""

    async def get_case(self, code: str) -> Case:
        """Raises ``CaseNotFound``."""

    async def cases(
        self, statuses: Iterable[CaseStatus], limit: int = 1000, *, newest_first: bool, offset: int = 0
    ) -> list[Case]:
        """Cases in ``statuses`` by creation time (then code), newest or oldest first; ``offset`` pages."""

    async def case_codes_after(self, statuses: Iterable[CaseStatus], after: str, limit: int) -> list[str]:
        """Up to ``limit`` codes in ``statuses`` greater than ``after``, in code order: a keyset page
        (cases leaving or joining the set meanwhile never make a later page skip one)."""

    async def case_codes(self, statuses: Iterable[CaseStatus]) -> set[str]: ...
    async def apply_status(self, code: str, entry: StatusEntry, *, force: bool = False) -> tuple[Case, bool]:
        """Append ``entry`` to the history (once per non-empty event id); the status only moves
        forward unless forced. Returns the case and whether its status changed. ``CaseNotFound``."""

    async def mark_overdue(self, now: datetime) -> list[Case]:
        """Flag (once) open cases whose ``due_at`` has passed; returns those newly flagged."""

    async def evidence_rows(self) -> list[EvidenceRow]: ...
    async def remove_evidence(self, code: str) -> None: ...


def incident_to_json(incident: Incident) -> str:
    data = dataclasses.asdict(incident)
    for key, value in data.items():
        if isinstance(value, datetime):
            data[key] = value.isoformat()
    return json.dumps(data, ensure_ascii=False)


def incident_from_json(text: str) -> Incident:
    data: dict[str, Any] = json.loads(text)
    for key in ("first_seen", "last_seen", "acknowledged_at", "closed_at"):
        if data.get(key):
            data[key] = datetime.fromisoformat(data[key])
    data["state"] = IncidentState(data["state"])
    data["grade"] = Grade(data["grade"]) if data.get("grade") else None
    return Incident(**data)


def _ids(dirty: dict[str, tuple[int, Incident]], most: int = 20) -> str:
    """The incident ids of ``dirty`` for a log line (the first ``most``, and how many more)."""
    ids = list(dirty)
    more = f" and {len(ids) - most} more" if len(ids) > most else ""
    return ", ".join(ids[:most]) + more


def _incident_row(i: Incident) -> tuple[str, str, str, str, str]:
    return (i.id, i.camera_id, str(i.state), i.last_seen.isoformat(), incident_to_json(i))


def _history_row(code: str, entry: StatusEntry) -> tuple[str, str, str, str, str, str]:
    return (code, str(entry.status), entry.at.isoformat(), entry.note, entry.source, entry.event_id)


def _load_case(c: sqlite3.Connection, code: str) -> Case | None:
    row = c.execute("SELECT data, status, overdue_at FROM cases WHERE code=?", (code,)).fetchone()
    if row is None:
        return None
    history = [
        StatusEntry(status=CaseStatus(s), at=datetime.fromisoformat(at), note=note, source=source, event_id=event_id)
        for s, at, note, source, event_id in c.execute(
            "SELECT status, at, note, source, event_id FROM case_history WHERE code=? ORDER BY n", (code,)
        )
    ]
    case = Case.model_validate_json(row[0])
    case.status = CaseStatus(row[1])
    case.overdue_at = datetime.fromisoformat(row[2]) if row[2] else None
    case.history = history
    return case


class SqliteEventStore:
    """``EventStore`` on one SQLite file (WAL), one worker thread."""

    def __init__(self, path: Path, *, flush_delay_s: float = 0.05) -> None:
        self.path = path
        self.flush_delay_s = flush_delay_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="events-store")
        self._conn: sqlite3.Connection | None = None
        self._lock: OwnerLock | None = None
        self._dirty: dict[str, tuple[int, Incident]] = {}  # id -> (number of the put, the incident)
        self._version = 0
        self._flush_task: asyncio.Task[None] | None = None
        self.flushes = 0
        self.write_failures = 0  # background flushes failed in a row (0 after a good write)

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._conn is None:
                raise EventStoreError(f"event store {self.path} is not open; call open() first")
            try:
                with self._conn:  # one transaction: commit, or roll back on error
                    return fn(self._conn)
            except sqlite3.Error as exc:
                raise EventStoreError(f"event store {self.path}: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def open(self) -> None:
        """Open (creating it) the file; ``EventStoreError`` names the file and what to do if it is in use by
        another process, unwritable, damaged, of another program, or written by a newer gateway (``store_file``)."""
        conn, lock = await asyncio.get_running_loop().run_in_executor(self._executor, open_store_file, self.path)
        self._conn, self._lock = conn, lock

    async def close(self) -> None:
        """Write what is dirty and close; raises ``EventStoreError`` (after closing) if that write fails."""
        task = self._flush_task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])

        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._lock is not None:
                self._lock.release()
                self._lock = None

        try:
            if self._conn is not None:
                await self.flush()
        finally:
            if self._dirty:
                log.error(
                    "event store %s closed with %d incident update(s) unwritten: %s",
                    self.path,
                    len(self._dirty),
                    _ids(self._dirty),
                )
            await asyncio.get_running_loop().run_in_executor(self._executor, shut)
            self._executor.shutdown(wait=True)

    # -- incidents -------------------------------------------------------------------------------
    def put_incident(self, incident: Incident) -> None:
        self._version += 1
        self._dirty[incident.id] = (self._version, incident)
        if self._flush_task is None or self._flush_task.done():
            self._schedule_flush(self.flush_delay_s)

    def _schedule_flush(self, delay_s: float) -> None:
        task = asyncio.get_running_loop().create_task(self._delayed_flush(delay_s), name="events-store-flush")
        task.add_done_callback(self._flush_done)
        self._flush_task = task

    async def _delayed_flush(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        await self._write_dirty()

    def _flush_done(self, task: asyncio.Task[None]) -> None:
        """A background flush failed: say which incidents wait, and try again later (backing off)."""
        if task.cancelled() or task.exception() is None:
            return
        self.write_failures += 1
        retry_s = min(_RETRY_CAP_S, self.flush_delay_s * 2**self.write_failures)
        log.error(
            "event store %s: writing %d incident update(s) failed, kept for the next flush in %.1f s: %s (%s)",
            self.path,
            len(self._dirty),
            retry_s,
            task.exception(),
            _ids(self._dirty),
        )
        if self._conn is not None and self._dirty and self._flush_task is task:
            self._schedule_flush(retry_s)

    async def _write_dirty(self) -> None:
        """Write every dirty incident in one transaction; only what was written stops being dirty, and
        only if it was not put again meanwhile. Raises ``EventStoreError``; nothing is dropped then."""
        if not self._dirty:
            return
        batch = dict(self._dirty)
        rows = [_incident_row(incident) for _, incident in batch.values()]
        self.flushes += 1
        await self._run(lambda c: c.executemany(_UPSERT_INCIDENT, rows))
        self.write_failures = 0
        for incident_id, (version, _) in batch.items():
            self._written(incident_id, version)

    def _written(self, incident_id: str, version: int) -> None:
        """The put numbered ``version`` is on disk: the incident is clean unless it was put again since."""
        current = self._dirty.get(incident_id)
        if current is not None and current[0] == version:
            del self._dirty[incident_id]

    async def flush(self) -> None:
        """Write the dirty incidents now; raises ``EventStoreError`` (they stay dirty) if that fails."""
        await self._write_dirty()

    async def get_incident(self, incident_id: str) -> Incident:
        if incident_id in self._dirty:
            return self._dirty[incident_id][1]
        row = await self._run(lambda c: c.execute("SELECT data FROM incidents WHERE id=?", (incident_id,)).fetchone())
        if row is None:
            raise IncidentNotFound(f"no incident {incident_id}")
        return incident_from_json(row[0])

    async def live_incidents(self, *, closed_within_s: float = 0.0) -> list[Incident]:
        await self.flush()
        states = [str(s) for s in LIVE_STATES]
        marks = ",".join("?" for _ in states)
        sql = f"SELECT data FROM incidents WHERE state IN ({marks})"
        closed_sql = "SELECT data FROM incidents WHERE state = ? AND last_seen >= ?"

        def read(c: sqlite3.Connection) -> list[Any]:
            rows = c.execute(sql, states).fetchall()
            if closed_within_s <= 0:
                return rows
            newest = c.execute("SELECT MAX(last_seen) FROM incidents").fetchone()[0]
            if newest:
                since = datetime.fromisoformat(newest) - timedelta(seconds=closed_within_s) - _OFFSET_SLACK
                rows += c.execute(closed_sql, (str(IncidentState.CLOSED), since.isoformat())).fetchall()
            return rows

        return [incident_from_json(r[0]) for r in await self._run(read)]

    # -- codes -----------------------------------------------------------------------------------
    async def next_sequence(self, scope: str) -> int:
        sql = (
            "INSERT INTO sequences(scope, value) VALUES (?, 1) "
            "ON CONFLICT(scope) DO UPDATE SET value = value + 1 RETURNING value"
        )
        row = await self._run(lambda c: c.execute(sql, (scope,)).fetchone())
        return int(row[0])

    # -- cases -----------------------------------------------------------------------------------
    async def create_case(self, case: Case, incident: Incident) -> bool:
        body = case.model_dump_json(exclude={"history"})
        history = [_history_row(case.code, e) for e in case.history]
        incident_row = _incident_row(incident)
        pending = self._dirty.get(incident.id)
        evidence = case.evidence
        case_row = (
            case.code,
            case.incident_id,
            str(case.status),
            case.due_at.isoformat(),
            case.created_at.isoformat(),
            body,
        )

        def write(c: sqlite3.Connection) -> bool:
            cur = c.execute(
                "INSERT OR IGNORE INTO cases(code, incident_id, status, due_at, created_at, data) VALUES (?,?,?,?,?,?)",
                case_row,
            )
            if cur.rowcount == 0:
                return False
            c.executemany(_INSERT_HISTORY, history)
            if evidence is not None:
                c.execute(_INSERT_EVIDENCE, (case.code, evidence.path, evidence.sha256, evidence.bytes, case_row[4]))
            c.execute(_UPSERT_INCIDENT, incident_row)
            return True

        created = await self._run(write)
        if created and pending is not None:
            self._written(incident.id, pending[0])  # written with the case
        return created

    async def get_case(self, code: str) -> Case:
        case = await self._run(lambda c: _load_case(c, code))
        if case is None:
            raise CaseNotFound(f"no case {code}")
        return case

    async def cases(
        self, statuses: Iterable[CaseStatus], limit: int = 1000, *, newest_first: bool, offset: int = 0
    ) -> list[Case]:
        wanted = [str(s) for s in statuses]
        marks = ",".join("?" for _ in wanted)
        order = "DESC" if newest_first else "ASC"
        sql = (
            f"SELECT code FROM cases WHERE status IN ({marks}) "
            f"ORDER BY created_at {order}, code {order} LIMIT ? OFFSET ?"
        )

        def read(c: sqlite3.Connection) -> list[Case]:
            codes = c.execute(sql, [*wanted, limit, offset]).fetchall()
            return [case for (code,) in codes if (case := _load_case(c, code)) is not None]

        return await self._run(read)

    async def case_codes_after(self, statuses: Iterable[CaseStatus], after: str, limit: int) -> list[str]:
        wanted = [str(s) for s in statuses]
        marks = ",".join("?" for _ in wanted)
        sql = f"SELECT code FROM cases WHERE status IN ({marks}) AND code > ? ORDER BY code LIMIT ?"
        rows = await self._run(lambda c: c.execute(sql, [*wanted, after, limit]).fetchall())
        return [r[0] for r in rows]

    async def case_codes(self, statuses: Iterable[CaseStatus]) -> set[str]:
        wanted = [str(s) for s in statuses]
        marks = ",".join("?" for _ in wanted)
        sql = f"SELECT code FROM cases WHERE status IN ({marks})"
        rows = await self._run(lambda c: c.execute(sql, wanted).fetchall())
        return {r[0] for r in rows}

    async def apply_status(self, code: str, entry: StatusEntry, *, force: bool = False) -> tuple[Case, bool]:
        def write(c: sqlite3.Connection) -> tuple[Case, bool] | None:
            row = c.execute("SELECT status FROM cases WHERE code=?", (code,)).fetchone()
            if row is None:
                return None
            seen = (
                entry.event_id
                and c.execute(
                    "SELECT 1 FROM case_history WHERE code=? AND event_id=?", (code, entry.event_id)
                ).fetchone()
            )
            changed = False
            if not seen:
                c.execute(_INSERT_HISTORY, _history_row(code, entry))
                changed = force or STATUS_RANK[entry.status] > STATUS_RANK[CaseStatus(row[0])]
                if changed:
                    c.execute("UPDATE cases SET status=? WHERE code=?", (str(entry.status), code))
            case = _load_case(c, code)
            return (case, changed) if case is not None else None

        result = await self._run(write)
        if result is None:
            raise CaseNotFound(f"no case {code}")
        return result

    async def mark_overdue(self, now: datetime) -> list[Case]:
        finals = (str(CaseStatus.CLOSED), str(CaseStatus.REJECTED))

        def write(c: sqlite3.Connection) -> list[Case]:
            rows = c.execute(
                "SELECT code, status, due_at FROM cases WHERE overdue_at IS NULL AND status NOT IN (?, ?)", finals
            ).fetchall()
            flagged = []
            for code, status, due_at in rows:
                if datetime.fromisoformat(due_at) > now:
                    continue
                c.execute("UPDATE cases SET overdue_at=? WHERE code=?", (now.isoformat(), code))
                entry = StatusEntry(
                    status=CaseStatus(status), at=now, note=f"overdue (due {due_at}) / 已超期", source="overdue-check"
                )
                c.execute(_INSERT_HISTORY, _history_row(code, entry))
                if (case := _load_case(c, code)) is not None:
                    flagged.append(case)
            return flagged

        return await self._run(write)

    # -- evidence index --------------------------------------------------------------------------
    async def evidence_rows(self) -> list[EvidenceRow]:
        sql = "SELECT code, path, sha256, bytes, created_at FROM evidence ORDER BY created_at"
        rows = await self._run(lambda c: c.execute(sql).fetchall())
        return [EvidenceRow(r[0], r[1], r[2], int(r[3]), datetime.fromisoformat(r[4])) for r in rows]

    async def remove_evidence(self, code: str) -> None:
        await self._run(lambda c: c.execute("DELETE FROM evidence WHERE code=?", (code,)))
