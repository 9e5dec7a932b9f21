"""Patrol policy: how often a camera is visited now, and when exactly (its phase).

The interval of a camera, in order:

1. its override (``PatrolTarget.interval_s``) or the base interval of its priority
   (``priority_intervals_s``: 1 -> 1 min ... 5 -> 15 min by default);
2. tightened (never loosened) by every active time-of-day window of its category, evaluated in
   the configured local time zone (schools at opening and closing, squares in the evening, ...);
3. capped by the floor (every camera at least once per ``floor_s``) and bounded below by
   ``min_interval_s``.

Visits fall on a grid per camera: ``phase * interval + k * interval`` (epoch seconds), where the
phase is a stable hash of the camera id in [0, 1). Cameras of one interval are thus spread evenly
over it, with no herd at minute boundaries, and a camera that joins later lands on its own slot.
"""

from __future__ import annotations

import hashlib
import math
import zoneinfo
from datetime import datetime

from xueliang.inference.patrol.models import PatrolTarget
from xueliang.inference.patrol.settings import SchedulerSettings
from xueliang.inference.zones import window_active


def phase_of(camera_id: str) -> float:
    """A stable fraction in [0, 1) from the camera id (the same on every node and every run)."""
    digest = hashlib.blake2b(camera_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def next_slot(phase: float, interval_s: float, after: float, *, inclusive: bool = False) -> float:
    """The first grid time ``phase * interval + k * interval`` at or after (``inclusive``) or
    strictly after ``after``."""
    offset = phase * interval_s
    k = math.ceil((after - offset) / interval_s) if inclusive else math.floor((after - offset) / interval_s) + 1
    slot = offset + k * interval_s
    if inclusive and slot < after:  # float rounding
        slot += interval_s
    if not inclusive and slot <= after:
        slot += interval_s
    return slot


class PatrolPolicy:
    """Interval of each camera at a given moment, from the scheduler settings."""

    def __init__(self, settings: SchedulerSettings) -> None:
        self._s = settings
        self._tz = zoneinfo.ZoneInfo(settings.timezone)

    def local_time(self, epoch_s: float) -> datetime:
        return datetime.fromtimestamp(epoch_s, tz=self._tz)

    def active_windows(self, epoch_s: float) -> frozenset[int]:
        """Indices of the category windows active at ``epoch_s``; a change means intervals changed."""
        local = self.local_time(epoch_s)
        return frozenset(i for i, w in enumerate(self._s.category_windows) if window_active(w, local))

    def interval_s(self, target: PatrolTarget, active: frozenset[int]) -> float:
        """The interval ``target`` asks for while the windows ``active`` are active."""
        s = self._s
        interval = target.interval_s if target.interval_s is not None else s.priority_intervals_s[target.priority]
        for index in active:
            window = s.category_windows[index]
            if window.category == target.category:
                interval = min(interval, window.interval_s)
        return max(s.min_interval_s, min(interval, s.floor_s))
