"""Incident aggregation: a thousand frames of the same thing become one incident.

Anomalies for the same (camera, rule, zone) update ONE incident while the condition lasts (first
and last seen, count, peak value, best evidence = highest value, then highest detection score). The
incident is *raised* once it has ``min_observations`` and has lasted ``min_duration_s``; before that
it is a candidate nobody sees (a candidate that goes quiet is dropped and counted). ``quiet_s``
without an observation closes it, at ``last_seen + quiet_s``; an observation within ``hold_down_s``
after that re-opens the SAME incident in the state it had (flapping is damped: no second case).
Windows come per rule or per rule family from ``AggregationSettings``.

Each live incident keeps its best evidence frame (a JPEG) in memory, within
``max_evidence_bytes`` in all: past it the frames kept longest ago are dropped (counted in
``evidence_evicted``); the incident keeps everything else, and a later frame becomes its evidence
again. A case raised at that moment still gets its frame (the transition holds it). Dropping rather
than spilling to disk keeps this part synchronous and free of I/O, and evidence files exist per
case only (named by the case code, indexed, under retention): a frame without a case would need a
file nobody indexes or prunes. The cost: a case raised by hand later may come without a picture.

A raised incident without a case (first graded to none: a crowd of 8, a dwell under the first edge,
an intrusion just before the night window) is handed back for grading again as a ``REVIEW``
transition, but only when it reaches a new peak value or its time crosses a mark of ``time_mark``
(the service sets it to the grading tables' time-window edges; without one, no reviews: a bare
aggregator only aggregates); every other frame costs one comparison. Once the incident has a case
no review comes (raising an existing case's grade is not done here). Dismissed incidents are not
reviewed: an operator said they are nothing.

After a restart (``restore``) the store's incidents come back as they were: live ones live (each is
reviewed on its next frame, in case it was raised and the case never committed), closed ones in
their hold-down window closed, so a sighting re-opens the SAME incident as without the restart.

Time is the anomalies' own ``observed_at`` (and the ``now`` handed to ``sweep``), so the outcome
does not depend on when the loop gets to it. Everything is in memory and synchronous: the hot path is
a dict lookup and a few assignments; each change is handed to ``write_through`` (the store's
coalescing ``put_incident``). Operator actions check the state machine::

    open --acknowledge--> acknowledged
    open|acknowledged --dismiss(reason)--> dismissed
    open|acknowledged|closed --escalate--> escalated (a case by hand)
    any live --quiet--> closed --seen again within hold-down--> the state it had
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from xueliang.events.errors import IncidentNotFound, InvalidTransition
from xueliang.events.models import Incident, IncidentState
from xueliang.events.settings import AggregationSettings, RuleWindow
from xueliang.inference.anomaly import Anomaly, Evidence

Key = tuple[str, str, str]


class TransitionKind(enum.StrEnum):
    RAISED = "raised"
    REOPENED = "reopened"
    CLOSED = "closed"
    REVIEW = "review"  # a raised incident without a case grew or crossed a time mark: grade it again


_REVIEWED = frozenset({IncidentState.OPEN, IncidentState.ACKNOWLEDGED})


@dataclass(frozen=True, slots=True)
class Transition:
    kind: TransitionKind
    incident: Incident
    evidence: Evidence | None = None  # the best frame so far (RAISED, REVIEW)


@dataclass(slots=True)
class _Entry:
    incident: Incident
    window: RuleWindow
    raised: bool
    evidence: Evidence | None = None
    best_value: float = float("-inf")
    state_before_close: IncidentState = IncidentState.OPEN
    review_peak: float = float("-inf")  # the peak value when last graded (-inf: grade on the next frame)
    review_mark: int = -1  # the time mark when last graded


@dataclass(slots=True)
class AggregatorStats:
    observed: int = 0
    raised: int = 0
    reopened: int = 0
    closed: int = 0
    reviews: int = 0  # raised incidents without a case handed back for grading again
    candidates_dropped: int = 0  # went quiet before reaching min observations/duration
    refused_full: int = 0  # new keys refused because max_live_incidents was reached
    live: int = 0
    evidence_bytes: int = 0  # evidence frames kept in memory now
    evidence_evicted: int = 0  # frames dropped (oldest kept first) to stay within max_evidence_bytes


_NONE: tuple[Transition, ...] = ()


def _score(evidence: Evidence | None) -> float:
    if evidence is None or not evidence.boxes:
        return 0.0
    return max(box.score for box in evidence.boxes)


def check_action(incident: Incident, action: str) -> None:
    """Raise ``InvalidTransition`` if ``action`` is not allowed in the incident's state."""
    allowed = {
        "acknowledge": {IncidentState.OPEN},
        "dismiss": {IncidentState.OPEN, IncidentState.ACKNOWLEDGED},
        "escalate": {IncidentState.OPEN, IncidentState.ACKNOWLEDGED, IncidentState.CLOSED},
    }[action]
    if incident.state not in allowed:
        raise InvalidTransition(
            f"incident {incident.id} is {incident.state}; {action} needs {' or '.join(sorted(allowed))}"
        )
    if action == "escalate" and incident.case_code:
        raise InvalidTransition(f"incident {incident.id} already has case {incident.case_code}")


class Aggregator:
    """Keeps live incidents in memory; synchronous and fast."""

    def __init__(self, settings: AggregationSettings, write_through: Callable[[Incident], None]) -> None:
        self.settings = settings
        self._write = write_through
        self._live: dict[Key, _Entry] = {}
        self._closed: dict[Key, _Entry] = {}  # within hold-down
        self._by_id: dict[str, Key] = {}
        self._windows: dict[str, RuleWindow] = {}
        self._kept: dict[Key, int] = {}  # keys whose live entry holds a frame -> its bytes, oldest kept first
        self.stats = AggregatorStats()
        # Which grading time window an instant falls in; a change sends a REVIEW (None: no reviews).
        self.time_mark: Callable[[datetime], int] | None = None

    def window(self, rule: str) -> RuleWindow:
        found = self._windows.get(rule)
        if found is None:
            rules = self.settings.rules
            found = rules.get(rule) or rules.get(rule.split(".", 1)[0]) or self.settings.default
            self._windows[rule] = found
        return found

    @property
    def restore_window_s(self) -> float:
        """How long ago an incident may have closed and still matter after a restart (the longest
        quiet time plus hold-down of any rule): what ``restore`` needs from the store."""
        windows = [self.settings.default, *self.settings.rules.values()]
        return max(w.quiet_s + w.hold_down_s for w in windows)

    def restore(self, incidents: Iterable[Incident]) -> None:
        """Take back the store's incidents after a restart (their frames are gone): live ones live,
        closed ones closed in their hold-down window (``sweep`` and the next sighting drop those past it)."""
        for incident in incidents:
            key = incident.key
            entry = _Entry(incident, self.window(incident.rule), raised=True)
            if incident.state == IncidentState.CLOSED:
                if incident.closed_at is None or key in self._live:
                    continue
                entry.state_before_close = _state_before_close(incident)
                self._closed[key] = entry
            else:
                self._closed.pop(key, None)
                self._live[key] = entry
            self._by_id[incident.id] = key
        self.stats.live = len(self._live)

    def observe(self, anomaly: Anomaly) -> tuple[Transition, ...]:
        out = self._observe(anomaly)
        if self.stats.evidence_bytes > self.settings.max_evidence_bytes:
            self._trim()
        return out

    def _keep(self, key: Key, entry: _Entry, evidence: Evidence) -> None:
        self._release(key, entry)
        entry.evidence = evidence
        size = len(evidence.jpeg)
        self._kept[key] = size
        self.stats.evidence_bytes += size

    def _release(self, key: Key, entry: _Entry) -> None:
        entry.evidence = None
        size = self._kept.pop(key, None)
        if size is not None:
            self.stats.evidence_bytes -= size

    def _trim(self) -> None:
        """Drop the frames kept longest ago until the rest fit in ``max_evidence_bytes`` (a frame larger
        than the whole budget, necessarily the one just kept, goes first: it cannot fit anyway)."""
        newest = next(reversed(self._kept), None)
        if newest is not None and self._kept[newest] > self.settings.max_evidence_bytes:
            self._release(newest, self._live[newest])
            self.stats.evidence_evicted += 1
        while self.stats.evidence_bytes > self.settings.max_evidence_bytes and self._kept:
            key = next(iter(self._kept))  # a kept frame's entry is live: _close releases it
            self._release(key, self._live[key])
            self.stats.evidence_evicted += 1

    def _observe(self, anomaly: Anomaly) -> tuple[Transition, ...]:
        key = (anomaly.camera_id, anomaly.rule, anomaly.zone)
        at = anomaly.observed_at
        self.stats.observed += 1
        out: list[Transition] | None = None
        entry = self._live.get(key)
        if entry is not None and (at - entry.incident.last_seen).total_seconds() > entry.window.quiet_s:
            closed = self._close(key, entry)
            out = [closed] if closed is not None else []
            entry = None
        if entry is None:
            entry, reopened = self._start(key, anomaly)
            if entry is None:
                return tuple(out) if out else _NONE
            if reopened is not None:
                out = [*(out or []), reopened]
        incident = entry.incident
        incident.count += 1
        if at > incident.last_seen:
            incident.last_seen = at
        elif at < incident.first_seen:
            incident.first_seen = at
        incident.peak_value = max(incident.peak_value, anomaly.value)
        if anomaly.evidence is not None:
            score = _score(anomaly.evidence)
            if entry.evidence is None or (anomaly.value, score) > (entry.best_value, incident.best_score):
                self._keep(key, entry, anomaly.evidence)
                entry.best_value = anomaly.value
                incident.best_evidence_id = anomaly.id
                incident.best_score = score
        if not entry.raised:
            window = entry.window
            lasted = (incident.last_seen - incident.first_seen).total_seconds()
            if incident.count >= window.min_observations and lasted >= window.min_duration_s:
                entry.raised = True
                self.stats.raised += 1
                self._write(incident)
                # graded now at first_seen with this peak: the next review needs more than that
                raised = Transition(TransitionKind.RAISED, incident, entry.evidence)
                if self.time_mark is None:
                    return (*(out or ()), raised)
                entry.review_peak = incident.peak_value
                entry.review_mark = self.time_mark(incident.first_seen)
                review = self._review(entry, at)
                return (*(out or ()), raised, *((review,) if review is not None else ()))
            return tuple(out) if out else _NONE
        self._write(incident)
        review = self._review(entry, at)
        if review is not None:
            return (*(out or ()), review)
        return tuple(out) if out else _NONE

    def _review(self, entry: _Entry, at: datetime) -> Transition | None:
        """A REVIEW when a raised incident without a case has a new peak or crossed a time mark."""
        incident = entry.incident
        if incident.case_code or incident.state not in _REVIEWED or self.time_mark is None:
            return None
        mark = self.time_mark(at)
        if incident.peak_value <= entry.review_peak and mark == entry.review_mark:
            return None
        entry.review_peak = incident.peak_value
        entry.review_mark = mark
        self.stats.reviews += 1
        return Transition(TransitionKind.REVIEW, incident, entry.evidence)

    def _start(self, key: Key, anomaly: Anomaly) -> tuple[_Entry | None, Transition | None]:
        closed = self._closed.pop(key, None)
        if closed is not None and closed.incident.closed_at is not None:
            since = (anomaly.observed_at - closed.incident.closed_at).total_seconds()
            if since <= closed.window.hold_down_s:
                incident = closed.incident
                incident.state = closed.state_before_close
                incident.closed_at = None
                incident.reopened += 1
                self._live[key] = closed
                self.stats.reopened += 1
                self.stats.live = len(self._live)
                return closed, Transition(TransitionKind.REOPENED, incident)
            self._by_id.pop(closed.incident.id, None)
        if len(self._live) >= self.settings.max_live_incidents:
            self.stats.refused_full += 1
            return None, None
        incident = Incident(
            id=uuid.uuid4().hex,
            camera_id=anomaly.camera_id,
            rule=anomaly.rule,
            zone=anomaly.zone,
            state=IncidentState.OPEN,
            first_seen=anomaly.observed_at,
            last_seen=anomaly.observed_at,
            count=0,
            peak_value=anomaly.value,
        )
        entry = _Entry(incident, self.window(anomaly.rule), raised=False)
        self._live[key] = entry
        self._by_id[incident.id] = key
        self.stats.live = len(self._live)
        return entry, None

    def _close(self, key: Key, entry: _Entry) -> Transition | None:
        del self._live[key]
        self.stats.live = len(self._live)
        incident = entry.incident
        self._release(key, entry)
        if not entry.raised:
            self._by_id.pop(incident.id, None)
            self.stats.candidates_dropped += 1
            return None
        entry.state_before_close = incident.state
        incident.state = IncidentState.CLOSED
        incident.closed_at = incident.last_seen + timedelta(seconds=entry.window.quiet_s)
        entry.best_value = float("-inf")
        self._closed[key] = entry
        self.stats.closed += 1
        self._write(incident)
        return Transition(TransitionKind.CLOSED, incident)

    def sweep(self, now: datetime) -> list[Transition]:
        """Close incidents quiet at ``now``; forget closed ones past their hold-down."""
        out = []
        for key, entry in list(self._live.items()):
            if (now - entry.incident.last_seen).total_seconds() > entry.window.quiet_s:
                closed = self._close(key, entry)
                if closed is not None:
                    out.append(closed)
        for key, entry in list(self._closed.items()):
            closed_at = entry.incident.closed_at
            if closed_at is None or (now - closed_at).total_seconds() > entry.window.hold_down_s:
                del self._closed[key]
                self._by_id.pop(entry.incident.id, None)
        return out

    # -- operators -------------------------------------------------------------------------------
    def find(self, incident_id: str) -> Incident | None:
        key = self._by_id.get(incident_id)
        if key is None:
            return None
        entry = self._live.get(key) or self._closed.get(key)
        if entry is None or entry.incident.id != incident_id or not entry.raised:
            return None
        return entry.incident

    def live(self) -> list[Incident]:
        return [e.incident for e in self._live.values() if e.raised]

    def best_evidence(self, incident_id: str) -> Evidence | None:
        key = self._by_id.get(incident_id)
        entry = self._live.get(key) if key is not None else None
        return entry.evidence if entry is not None else None

    def _get(self, incident_id: str, action: str) -> Incident:
        incident = self.find(incident_id)
        if incident is None:
            raise IncidentNotFound(f"incident {incident_id} is not live; {action} needs a live incident")
        return incident

    def acknowledge(self, incident_id: str, user: str, at: datetime) -> Incident:
        incident = self._get(incident_id, "acknowledge")
        check_action(incident, "acknowledge")
        incident.state = IncidentState.ACKNOWLEDGED
        incident.acknowledged_by = user
        incident.acknowledged_at = at
        self._write(incident)
        return incident

    def dismiss(self, incident_id: str, user: str, reason: str) -> Incident:
        incident = self._get(incident_id, "dismiss")
        if not reason.strip():
            raise InvalidTransition(f"dismissing incident {incident_id} needs a reason (驳回需填写原因)")
        check_action(incident, "dismiss")
        incident.state = IncidentState.DISMISSED
        incident.dismiss_reason = reason.strip()
        incident.acknowledged_by = incident.acknowledged_by or user
        self._write(incident)
        return incident

    def escalate(self, incident_id: str, user: str) -> Incident:
        incident = self._get(incident_id, "escalate")
        check_action(incident, "escalate")
        incident.state = IncidentState.ESCALATED
        incident.escalated_by = user
        self._write(incident)
        return incident


def _state_before_close(incident: Incident) -> IncidentState:
    """The state a closed incident re-opens into, from what operators did to it (the store keeps
    ``closed`` only): escalated, else dismissed, else acknowledged, else open."""
    if incident.escalated_by:
        return IncidentState.ESCALATED
    if incident.dismiss_reason:
        return IncidentState.DISMISSED
    return IncidentState.ACKNOWLEDGED if incident.acknowledged_by else IncidentState.OPEN
