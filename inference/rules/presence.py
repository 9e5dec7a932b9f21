"""Stateless zone rules on one frame: intrusion (anyone of the zone's labels inside during its
active hours) and crowd gathering (people counted inside at or above a threshold).

Both work on a single patrol snapshot as well as on a stream. A zone outside its active hours
never fires (``zones.active_at``, local time)."""

from __future__ import annotations

from xueliang.inference.rules.base import Observation, RuleHit, Seen, in_zone
from xueliang.inference.rules.settings import RuleSettings
from xueliang.inference.zones import Zone, ZoneKind, active_at


def _track_ids(obs: Observation) -> dict[int, int]:
    """id(detection) -> track id, for the detections tracked on this frame."""
    if obs.tracks is None:
        return {}
    return {id(t.detection): t.track_id for t in obs.tracks}


def intrusion(obs: Observation, zone: Zone, settings: RuleSettings) -> RuleHit | None:
    """``intrusion``: value = objects inside, threshold = 1."""
    if zone.kind is not ZoneKind.INTRUSION or not active_at(zone, obs.local_time):
        return None
    inside = in_zone(obs.detections, zone, obs.size, settings)
    if not inside:
        return None
    tracks = _track_ids(obs)
    return RuleHit(
        rule="intrusion",
        zone=zone,
        value=float(len(inside)),
        threshold=1.0,
        objects=tuple(Seen(d, tracks.get(id(d))) for d in inside),
        detail={"labels": ",".join(sorted({d.label for d in inside}))},
    )


def crowd(obs: Observation, zone: Zone, settings: RuleSettings) -> RuleHit | None:
    """``crowd``: value = people inside, threshold = the zone's (or default) minimum count."""
    if zone.kind is not ZoneKind.CROWD or not active_at(zone, obs.local_time):
        return None
    minimum = settings.crowd_min_count if zone.min_count is None else zone.min_count
    inside = in_zone(obs.detections, zone, obs.size, settings)
    if len(inside) < minimum:
        return None
    tracks = _track_ids(obs)
    return RuleHit(
        rule="crowd",
        zone=zone,
        value=float(len(inside)),
        threshold=float(minimum),
        objects=tuple(Seen(d, tracks.get(id(d))) for d in inside),
    )
