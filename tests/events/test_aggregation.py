"""Incident aggregation: one incident per (camera, rule, zone) while it lasts; quiet closes; flapping damped."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from xueliang.events.aggregation import Aggregator, TransitionKind
from xueliang.events.errors import InvalidTransition
from xueliang.events.models import Incident, IncidentState
from xueliang.events.settings import AggregationSettings, RuleWindow
from xueliang.inference.anomaly import Box, Evidence

from .conftest import BASE, anomaly, jpeg


def make() -> tuple[Aggregator, list[Incident]]:
    written: list[Incident] = []
    settings = AggregationSettings(
        default=RuleWindow(quiet_s=10, hold_down_s=30, min_observations=1, min_duration_s=0),
        rules={"crowd": RuleWindow(quiet_s=10, hold_down_s=30, min_observations=3, min_duration_s=4)},
    )
    return Aggregator(settings, written.append), written


def test_one_incident_while_it_lasts_with_peak_and_best_evidence() -> None:
    agg, written = make()
    low = Evidence(jpeg=jpeg(level=10), boxes=(Box(x1=0, y1=0, x2=5, y2=5, label="person", score=0.5),))
    high = Evidence(jpeg=jpeg(level=20), boxes=(Box(x1=0, y1=0, x2=5, y2=5, label="person", score=0.9),))
    same_value_better_score = Evidence(jpeg=jpeg(level=30), boxes=(Box(x1=0, y1=0, x2=5, y2=5, label="p", score=0.99),))
    out = [agg.observe(anomaly(1, "intrusion", 0, 2, evidence=low))]
    out.append(agg.observe(anomaly(1, "intrusion", 3, 5, evidence=high)))
    out.append(agg.observe(anomaly(1, "intrusion", 6, 3)))
    out.append(agg.observe(anomaly(1, "intrusion", 8, 5, evidence=same_value_better_score)))
    assert [t.kind for t in out[0]] == [TransitionKind.RAISED] and out[1:] == [(), (), ()]
    [incident] = agg.live()
    assert (incident.count, incident.peak_value, incident.best_score) == (4, 5, 0.99)
    assert incident.first_seen == BASE and incident.last_seen == BASE + timedelta(seconds=8)
    assert agg.best_evidence(incident.id) is same_value_better_score
    assert written[-1] is incident
    agg.observe(anomaly(1, "intrusion", 9, 1, zone="other-zone"))
    agg.observe(anomaly(2, "intrusion", 9, 1))
    assert len(agg.live()) == 3


def test_min_observations_and_duration_before_raising() -> None:
    agg, written = make()
    assert agg.observe(anomaly(1, "crowd", 0, 40)) == ()
    assert agg.observe(anomaly(1, "crowd", 1, 40)) == ()
    assert agg.observe(anomaly(1, "crowd", 2, 40)) == ()  # 3 observations but only 2 s
    assert agg.live() == [] and written == []
    [raised] = agg.observe(anomaly(1, "crowd", 4, 40))
    assert raised.kind == TransitionKind.RAISED and raised.incident.count == 4
    # A candidate that goes quiet is dropped, not raised.
    agg.observe(anomaly(2, "crowd", 0, 40))
    agg.sweep(BASE + timedelta(seconds=11))
    assert agg.stats.candidates_dropped == 1


def test_quiet_closes_hold_down_reopens_the_same_incident() -> None:
    agg, _ = make()
    [raised] = agg.observe(anomaly(1, "intrusion", 0, 1))
    incident = raised.incident
    [closed] = agg.sweep(BASE + timedelta(seconds=11))
    assert closed.kind == TransitionKind.CLOSED and incident.state == IncidentState.CLOSED
    assert incident.closed_at == BASE + timedelta(seconds=10)
    [reopened] = agg.observe(anomaly(1, "intrusion", 35, 1))  # 25 s after closing: within hold-down
    assert reopened.kind == TransitionKind.REOPENED and reopened.incident is incident
    assert incident.state == IncidentState.OPEN and incident.reopened == 1 and incident.count == 2
    # Closed (by the next anomaly) and seen again past the hold-down: a new incident.
    kinds = [t.kind for t in agg.observe(anomaly(1, "intrusion", 35 + 10 + 31 + 1, 1))]
    assert kinds == [TransitionKind.CLOSED, TransitionKind.RAISED]
    assert agg.stats.raised == 2 and agg.live()[0].id != incident.id


def test_operator_actions() -> None:
    agg, _ = make()
    [raised] = agg.observe(anomaly(1, "intrusion", 0, 1))
    incident_id = raised.incident.id
    with pytest.raises(InvalidTransition, match="needs a reason"):
        agg.dismiss(incident_id, "op", "  ")
    agg.acknowledge(incident_id, "op1", BASE)
    with pytest.raises(InvalidTransition, match="acknowledged; acknowledge needs open"):
        agg.acknowledge(incident_id, "op1", BASE)
    dismissed = agg.dismiss(incident_id, "op2", "误报：保洁人员")
    assert (dismissed.state, dismissed.dismiss_reason, dismissed.acknowledged_by) == (
        IncidentState.DISMISSED, "误报：保洁人员", "op1",
    )  # fmt: skip
    with pytest.raises(InvalidTransition):
        agg.escalate(incident_id, "op2")
    # A dismissed incident absorbs the rest of its flapping: no new raise.
    agg.sweep(BASE + timedelta(seconds=11))
    assert [t.kind for t in agg.observe(anomaly(1, "intrusion", 20, 1))] == [TransitionKind.REOPENED]
    assert agg.find(incident_id) is not None and agg.find(incident_id).state == IncidentState.DISMISSED  # type: ignore[union-attr]


def test_full_table_refuses_and_counts() -> None:
    written: list[Incident] = []
    agg = Aggregator(AggregationSettings(max_live_incidents=2), written.append)
    for cam in range(4):
        agg.observe(anomaly(cam, "sensor.door", 0, 1))
    assert agg.stats.refused_full == 2 and len(agg.live()) == 2


def test_evidence_frames_stay_within_their_byte_budget_oldest_kept_dropped_first() -> None:
    written: list[Incident] = []
    window = RuleWindow(quiet_s=10, hold_down_s=30, min_observations=1, min_duration_s=0)
    agg = Aggregator(AggregationSettings(default=window, rules={}, max_evidence_bytes=1000), written.append)

    def frame(size: int, score: float = 0.5) -> Evidence:
        return Evidence(jpeg=bytes(size), boxes=(Box(x1=0, y1=0, x2=5, y2=5, label="person", score=score),))

    for cam in (1, 2):
        agg.observe(anomaly(cam, "sensor.door", 0, 1, evidence=frame(400)))
    assert agg.stats.evidence_bytes == 800 and agg.stats.evidence_evicted == 0
    third = frame(400)
    [raised] = agg.observe(anomaly(3, "sensor.door", 1, 1, evidence=third))
    assert raised.evidence is third  # the case raised now still gets its frame
    one, two, three = (next(i for i in agg.live() if i.camera_id == f"cam-{c:03d}") for c in (1, 2, 3))
    assert agg.best_evidence(one.id) is None and agg.best_evidence(two.id) is not None
    assert agg.best_evidence(three.id) is third
    assert (agg.stats.evidence_bytes, agg.stats.evidence_evicted) == (800, 1)
    assert one.count == 1 and one.best_score == 0.5  # the incident itself is untouched
    # A better frame for cam 2 is kept last now: cam 3's frame is the oldest kept and goes next.
    agg.observe(anomaly(2, "sensor.door", 2, 2, evidence=frame(300, 0.9)))
    agg.observe(anomaly(4, "sensor.door", 2, 1, evidence=frame(400)))
    assert agg.best_evidence(three.id) is None and agg.best_evidence(two.id) is not None
    assert (agg.stats.evidence_bytes, agg.stats.evidence_evicted) == (700, 2)
    # Cam 1 gets a frame again; a frame larger than the whole budget goes with its case, is not kept,
    # and pushes no other frame out.
    agg.observe(anomaly(1, "sensor.door", 3, 1, evidence=frame(200)))
    assert agg.best_evidence(one.id) is not None
    huge = frame(5000)
    [raised] = agg.observe(anomaly(5, "sensor.door", 3, 1, evidence=huge))
    assert raised.evidence is huge and agg.best_evidence(raised.incident.id) is None
    assert (agg.stats.evidence_bytes, agg.stats.evidence_evicted) == (900, 3)
    # Closing releases the memory.
    agg.sweep(BASE + timedelta(seconds=60))
    assert agg.live() == [] and agg.stats.evidence_bytes == 0


def test_a_time_without_a_zone_is_utc_and_the_sweep_can_compare_it() -> None:
    """A sensor or an old client may send a naive time: taken as UTC (was: TypeError in sweep)."""
    agg, _ = make()
    naive = anomaly(1, "intrusion", 0, 1).model_copy(update={"observed_at": BASE.replace(tzinfo=None)})
    revalidated = type(naive).model_validate(naive.model_dump())
    assert revalidated.observed_at == BASE.astimezone(UTC)
    agg.observe(revalidated)
    assert [t.kind for t in agg.sweep(BASE + timedelta(seconds=60))] == [TransitionKind.CLOSED]
