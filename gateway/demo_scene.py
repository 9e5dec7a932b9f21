"""What the demo shows: zones drawn on the real footage, key cameras, the watched camera, the demo
operator and a ready-made wall.

Every simulated camera shows ``vtest.avi``: a fixed camera over a campus path (768x576), people
walking in small groups, a car and a van parked at the top right. The zones below were placed on
that picture (normalised coordinates) and checked with the shipped detector (yolox_nano, score 0.4)
on every 7th frame of the clip: the walkway holds 4 or more people in 95% of the frames, the
school-gate zone at least one person in all of them, and the three parked vehicles never move.

- squares, stations and shopping streets: a crowd zone over the walkway, threshold 4 people (low,
  so that crowds show up in the demo; the grading table makes a case only from 10 people);
- the first two school cameras: an intrusion zone ("school gate, closed") active all day, patrol
  priority 1 (every minute): intrusion is graded blue (red at night, 22:00-06:00, as the grading
  table says for schools), so each becomes a case delivered to the demo intake and walked to closed
  by its callbacks;
- the first road camera: a no-parking zone over the parked vehicles (3 min);
- ``demo.watch_cameras`` of the streaming cameras, school gate first, are watched continuously
  (a motion-gated stream at ``analytics.watch.fps``): boxes move on the wall and the first alarm
  comes within seconds instead of after two patrol visits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from pathlib import Path

from xueliang.gateway.demo_intake import DemoError
from xueliang.gateway.errors import Conflict, NotFound
from xueliang.gateway.models import PatrolPolicy, Role, User
from xueliang.gateway.node import Node
from xueliang.gateway.security import write_private
from xueliang.inference.zones import Zone, ZoneKind

log = logging.getLogger(__name__)

OPERATOR = "demo-operator"
CREDENTIALS_FILE = "demo-credentials.txt"
WALLS_DIR = "walls"  # the wall's saved walls, one JSON file per user (xueliang.api.wall.saved)
WALL_NAME = "演示墙 Demo wall"
WALL_FILE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")  # user names the wall keeps as <name>.json

WALKWAY = ((0.10, 0.31), (0.55, 0.30), (0.80, 0.14), (1.0, 0.14), (1.0, 0.85), (0.55, 0.62), (0.40, 0.52), (0.10, 0.42))
SCHOOL_GATE = ((0.45, 0.30), (0.62, 0.24), (0.80, 0.14), (1.0, 0.14), (1.0, 0.85), (0.55, 0.62))
FIRE_LANE = ((0.82, 0.05), (1.0, 0.05), (1.0, 0.20), (0.82, 0.20))

CROWD_ZONE = Zone(id="walkway", name="步行道 walkway", kind=ZoneKind.CROWD, polygon=WALKWAY, min_count=4)
GATE_ZONE = Zone(
    id="school-gate", name="校门口禁入区 school gate (closed)", kind=ZoneKind.INTRUSION, polygon=SCHOOL_GATE
)
PARKING_ZONE = Zone(
    id="fire-lane", name="消防通道禁停 fire lane, no parking", kind=ZoneKind.NO_PARKING, polygon=FIRE_LANE, dwell_s=180
)
CROWD_PLACES = frozenset({"square", "station", "commercial"})
INTRUSION_CAMERAS = 2  # the first school cameras with the gate zone
WATCH_PREFERENCE = ("school", "square", "station", "road")  # which streaming cameras are watched first


def scene_zones(category: str, nth_of_category: int) -> tuple[Zone, ...]:
    """The zones of the ``nth_of_category``-th (0-based) demo camera of ``category``."""
    if category in CROWD_PLACES:
        return (CROWD_ZONE,)
    if category == "school" and nth_of_category < INTRUSION_CAMERAS:
        return (GATE_ZONE,)
    if category == "road" and nth_of_category == 0:
        return (PARKING_ZONE,)
    return ()


def scene_policy(policy: PatrolPolicy, zones: tuple[Zone, ...], watched: bool) -> PatrolPolicy:
    """Cameras with an intrusion or parking zone are key places (priority 1); watched ones stream."""
    key = any(zone.kind in (ZoneKind.INTRUSION, ZoneKind.NO_PARKING) for zone in zones)
    return policy.model_copy(update={"priority": 1 if key else policy.priority, "watch": watched})


def watched_indices(categories: list[str], streaming: int, count: int) -> frozenset[int]:
    """The ``count`` streaming cameras (indices below ``streaming``) to watch, by preference."""
    ranked = sorted(range(min(streaming, len(categories))), key=lambda i: _rank(categories[i]))
    return frozenset(ranked[:count])


def _rank(category: str) -> int:
    return WATCH_PREFERENCE.index(category) if category in WATCH_PREFERENCE else len(WATCH_PREFERENCE)


async def ensure_operator(node: Node) -> Path:
    """The user ``demo-operator`` (role operator), created on first start with a generated password
    kept in ``<data_dir>/demo-credentials.txt`` (mode 0600); returns that file's path."""
    path = node.settings.node.data_dir / CREDENTIALS_FILE
    try:
        await node.stores.users.get_user(OPERATOR)
        return path
    except NotFound:
        pass
    password = secrets.token_urlsafe(12)
    try:
        await asyncio.to_thread(write_private, path, f"{OPERATOR}\n{password}\n")  # first: no password lost
    except OSError as exc:
        raise DemoError(f"cannot keep the demo operator's password in {path}: {exc.strerror}") from exc
    user = User(username=OPERATOR, password_hash=await node.passwords.hash(password), role=Role.OPERATOR)
    try:
        await node.stores.users.add_user(user)
    except Conflict:
        return path  # another start made it meanwhile
    await node.audit("system:demo", "users.add", "ok", target=OPERATOR, detail="demo operator")
    log.info("demo: user %s (operator) created; password in %s", OPERATOR, path)
    return path


async def ensure_wall(node: Node, users: list[str], cameras: list[str]) -> None:
    """A saved wall "演示墙 Demo wall" with ``cameras`` (the streaming ones) for each of ``users``
    that has no saved walls yet (the file format of ``xueliang.api.wall.saved.WallDocument``)."""
    document = {"walls": [{"name": WALL_NAME, "layout": 4, "cameras": cameras[:4]}], "tours": [], "updated_at": None}
    text = json.dumps(document, ensure_ascii=False, indent=1)
    directory = node.settings.node.data_dir / WALLS_DIR
    for user in users:
        path = directory / f"{user}.json"
        if WALL_FILE_NAME.fullmatch(user) and not path.exists():
            try:
                await asyncio.to_thread(write_private, path, text)
            except OSError as exc:
                log.warning("demo: cannot save the demo wall for %s in %s: %s", user, path, exc.strerror)
