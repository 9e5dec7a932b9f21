"""Loitering: a tracked person whose foot point has stayed in a zone for ``dwell_s`` or longer.

It needs the tracker, so a continuous stream: on a patrol snapshot (one frame per visit, minutes
apart) nobody can be followed, and the rule does not run (``Observation.tracks is None``). Put
cameras with loitering zones under watch mode (``PatrolTarget.watch``)."""

from __future__ import annotations

from xueliang.inference.rules.base import Observation, RuleHit, Seen, zone_labels, zone_min_score
from xueliang.inference.rules.settings import RuleSettings
from xueliang.inference.zones import Zone, ZoneKind, active_at


def loitering(obs: Observation, zone: Zone, settings: RuleSettings) -> RuleHit | None:
    """``loitering``: value = the longest dwell in seconds, threshold = the zone's dwell."""
    if zone.kind is not ZoneKind.LOITERING or obs.tracks is None or not active_at(zone, obs.local_time):
        return None
    dwell = settings.loitering_dwell_s if zone.dwell_s is None else zone.dwell_s
    labels, min_score = zone_labels(zone, settings), zone_min_score(zone, settings)
    staying = [
        t
        for t in obs.tracks
        if t.label in labels and t.detection.score >= min_score and t.dwell_s(zone.id, obs.now) >= dwell
    ]
    if not staying:
        return None
    longest = max(t.dwell_s(zone.id, obs.now) for t in staying)
    return RuleHit(
        rule="loitering",
        zone=zone,
        value=round(longest, 3),
        threshold=dwell,
        objects=tuple(Seen(t.detection, t.track_id) for t in staying),
        detail={"people": float(len(staying))},
    )
