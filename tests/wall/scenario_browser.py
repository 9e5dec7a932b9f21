"""The wall page in a real headless Chromium against the gateway and the camera simulator.

An operator logs in, builds a 4-tile wall (click and drag from the camera tree), every tile plays
(decoded frames counted by the browser, currentTime advancing), the detector's boxes for a camera
with people are drawn over its tile, an incident raised during the test shows in the alarm panel
and is acknowledged, a PTZ button reaches the simulated dome, the wall is saved on the server, a
tour rotates cameras, and a technician is refused. A box from a frame analysed at another size and
aspect than the live stream's lands where the tile shows that part of the picture, sharp on a HiDPI
screen (device pixel ratio 2); boxes reaching past the picture stop at its edge, their labels leave the
box's top edge visible, and boxes past their time-to-live are cleared once, after which the overlay is
not redrawn until new boxes arrive. Screenshots go to ``tests/.artifacts/``.

Runs inside the test network namespace (``test_in_netns.py``): ICE needs a non-loopback address.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.waiting import wait_until
from tests.wall.conftest import ARTIFACTS, CAMERA_PASSWORD, MODEL, USER_PASSWORD, WallEnv
from xueliang.inference.anomaly import Anomaly, Evidence
from xueliang.inference.detector import Detector
from xueliang.inference.frames import Frame
from xueliang.inference.settings import DetectorSettings

pytestmark = pytest.mark.usefixtures("netns")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
PEOPLE_CAMERA = "cam-0"  # vtest.avi: pedestrians; camera 0 is also a PTZ dome

TILE_STATS = """() => [...document.querySelectorAll('.grid .tile')].map(tile => {
  const v = tile.querySelector('video');
  return {name: tile.querySelector('.name').textContent, frames: v.getVideoPlaybackQuality().totalVideoFrames,
          time: v.currentTime, width: v.videoWidth, height: v.videoHeight};
})"""
OVERLAY_PIXELS = """(index) => {
  const c = document.querySelectorAll('.grid .tile canvas')[index];
  if (!c.width || !c.height) return 0;
  const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
  return n;
}"""
# Opening of the page-side overlay checks (in a function of `index`): the tile's canvas and its pixels,
# and the rectangle where the <video> displays its picture (object-fit: contain, centred, from
# videoWidth/videoHeight and the element's box) in the canvas's own (device) pixels; null while the
# video or the canvas has no size. "Stroke" pixels have the box colour (#39ff6a).
PICTURE = """
  const tile = document.querySelectorAll('.grid .tile')[index];
  const video = tile.querySelector('video');
  const c = tile.querySelector('canvas');
  const vw = video.videoWidth, vh = video.videoHeight;
  if (!vw || !vh || !c.width || !c.height) return null;
  const vr = video.getBoundingClientRect(), cr = c.getBoundingClientRect();
  const scale = Math.min(vr.width / vw, vr.height / vh);
  const sx = c.width / cr.width, sy = c.height / cr.height;
  const left = (vr.left + (vr.width - vw * scale) / 2 - cr.left) * sx, right = left + vw * scale * sx;
  const top = (vr.top + (vr.height - vh * scale) / 2 - cr.top) * sy, bottom = top + vh * scale * sy;
  const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const stroke = (i) => data[i + 3] >= 64 && data[i + 1] >= 150 && data[i] < 150;
"""
# Where a detection box must show over the live picture, and what the overlay drew there. Expected
# rectangle: the box as fractions of the analysed frame, laid on the displayed picture. An edge is
# found at a sample point when a stroke pixel lies within `tol` of where the edge must be; strays are
# stroke pixels farther than `tol` from the rectangle, leaving out the label's band above its top edge.
BOX_PLACEMENT = (
    """({index, fx1, fy1, fx2, fy2, tol}) => {"""
    + PICTURE
    + """
  const x1 = left + fx1 * (right - left), x2 = left + fx2 * (right - left);
  const y1 = top + fy1 * (bottom - top), y2 = top + fy2 * (bottom - top);
  const box = (x, y) => {
    if (x < 0 || y < 0 || x >= c.width || y >= c.height) return false;
    return stroke((Math.floor(y) * c.width + Math.floor(x)) * 4);
  };
  const near = (x, y, dx, dy) => {
    for (let d = -tol; d <= tol; d++) if (box(x + d * dx, y + d * dy)) return true;
    return false;
  };
  const edge = (fixed, from, to, vertical) => {
    let hit = 0, n = 0;
    for (let t = from + 0.1 * (to - from); t <= from + 0.9 * (to - from); t += 2, n++)
      if (vertical ? near(fixed, t, 1, 0) : near(t, fixed, 0, 1)) hit++;
    return n ? hit / n : 0;
  };
  let boxPixels = 0, strays = 0;
  for (let y = 0; y < c.height; y++)
    for (let x = 0; x < c.width; x++) {
      if (!box(x, y)) continue;
      boxPixels++;
      const inside = x >= x1 - tol && x <= x2 + tol && y >= y1 - tol && y <= y2 + tol;
      const label = y >= y1 - 24 * sy && y < y1 && x >= x1 - tol && x <= Math.max(x2, x1 + 160 * sx);
      if (!inside && !label) strays++;
    }
  return {video: [vw, vh], canvas: [c.width, c.height], css: [cr.width, cr.height], ratio: devicePixelRatio,
          expected: [x1, y1, x2, y2], boxPixels, strays,
          edges: {left: edge(x1, y1, y2, true), right: edge(x2, y1, y2, true),
                  top: edge(y1, x1, x2, false), bottom: edge(y2, x1, x2, false)}};
}"""
)
# What the overlay drew around the displayed picture: `outside` counts drawn pixels (any alpha) more
# than 1 px outside it (in a letterbox band), `inside` stroke pixels within it. `topEdge`: the share of
# stroke pixels along the canvas row just above the top line of the box at fractions (fx1, fy1) (inside
# a 2 CSS px stroke), from its left edge to the picture's right edge: where a label covers it, it is dark.
OVERLAY_CLIP = (
    """({index, fx1, fy1}) => {"""
    + PICTURE
    + """
  let inside = 0, outside = 0;
  for (let y = 0; y < c.height; y++)
    for (let x = 0; x < c.width; x++) {
      const i = (y * c.width + x) * 4;
      if (!data[i + 3]) continue;
      if (x >= left - 1 && x < right + 1 && y >= top - 1 && y < bottom + 1) inside += stroke(i) ? 1 : 0;
      else outside++;
    }
  const row = Math.floor(top + fy1 * (bottom - top)) - 1;
  let hit = 0, n = 0;
  for (let x = Math.ceil(left + fx1 * (right - left)) + 4; x < right - 4; x++, n++)
    if (stroke((row * c.width + x) * 4)) hit++;
  return {canvas: [c.width, c.height], picture: [left, top, right, bottom],
          bands: Math.max(left, c.width - right, top, c.height - bottom), inside, outside, topEdge: n ? hit / n : 0};
}"""
)
# Counts the tile's overlay redraws from now on (window.xlDraws).
COUNT_DRAWS = """(index) => {
  const tile = xlWall().tiles[index];
  const draw = tile.drawOverlay;
  window.xlDraws = 0;
  tile.drawOverlay = function () { window.xlDraws++; return draw.call(this); };
}"""


async def snapshot(env: WallEnv, index: int) -> bytes:
    camera = env.sim.cameras[index]
    url = f"http://{camera.address}:{env.sim.http_port}/onvif/snapshot/1.jpg"
    async with httpx.AsyncClient(auth=httpx.DigestAuth("admin", CAMERA_PASSWORD), timeout=10) as client:
        response = await client.get(url)
        response.raise_for_status()
        return response.content


async def raise_crowd(env: WallEnv) -> None:
    """Crowd anomalies at camera 1 (a square: 35 people grade orange) with its picture as evidence."""
    jpeg = await snapshot(env, 1)
    evidence = Evidence(jpeg=jpeg, width=768, height=576)
    cases = env.gateway.node.cases
    assert cases is not None
    while True:
        await cases.publish(Anomaly(camera_id="cam-1", rule="crowd", value=35, zone="square", evidence=evidence))
        await asyncio.sleep(0.3)


async def publish_detections(env: WallEnv, published: list[int]) -> None:
    """The real detector on the simulated camera's pictures, published like the patrol would."""
    async with Detector(DetectorSettings(model_path=MODEL)) as detector:
        while True:
            jpeg = await snapshot(env, 0)
            image = await asyncio.to_thread(cv2.imdecode, np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            frame = Frame(PEOPLE_CAMERA, image, time.time(), source="snapshot")
            found = await detector.detect(frame, classes=frozenset({"person"}), min_score=0.4)
            boxes = [
                {"x1": d.x1, "y1": d.y1, "x2": d.x2, "y2": d.y2, "label": d.label, "score": round(d.score, 3)}
                for d in found
            ]
            height, width = image.shape[:2]
            data = {"width": width, "height": height, "boxes": boxes, "ts": frame.captured_at}
            env.gateway.node.live.publish("detections", PEOPLE_CAMERA, data)
            published.append(len(boxes))
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def log_in(page: Page, url: str, username: str) -> None:
    await page.goto(f"{url}/wall/")
    await page.fill(".login-form input[name=username]", username)
    await page.fill(".login-form input[name=password]", USER_PASSWORD)
    await page.click(".login-btn")


async def tile_stats(page: Page) -> list[dict[str, Any]]:
    stats: list[dict[str, Any]] = await page.evaluate(TILE_STATS)
    return stats


async def test_operator_watches_a_four_tile_wall_with_overlays_alarms_and_ptz(env: WallEnv) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    published: list[int] = []
    detections = asyncio.create_task(publish_detections(env, published))
    try:
        async with chromium() as browser:
            page = await browser.new_page(viewport={"width": 1600, "height": 900})
            page.on("console", lambda msg: print(f"{time.monotonic():.2f} console:", msg.type, msg.text))
            page.on(
                "response",
                lambda r: r.status >= 400 and print(f"{time.monotonic():.2f} HTTP", r.status, r.request.method, r.url),
            )
            await log_in(page, env.url, "op1")
            await page.wait_for_selector(".tree .group.district", timeout=15000)
            assert await page.locator(".brand").inner_text() == "雪亮工程 · 实时视频墙"

            # A 4-tile wall: three cameras by click (search), one dragged from the tree.
            await page.click(".layout-btn[data-layout='4']")
            await page.fill(".tree-search", "cam-")
            for camera in ("cam-0", "cam-1", "cam-2"):
                await page.click(f".tree .cam[data-id='{camera}']")
            await page.fill(".tree-search", "文治")
            await page.drag_and_drop(".tree .cam[data-id='cam-3']", ".grid .tile[data-index='3']")
            names = [s["name"] for s in await tile_stats(page)]
            assert names == ["东城广场北口", "西城汽车站", "登科中学门口", "文治路口"]

            async def all_playing(minimum: int) -> bool:
                return all(s["frames"] >= minimum and s["width"] > 0 for s in await tile_stats(page))

            deadline = time.monotonic() + 60
            while not await all_playing(10):
                assert time.monotonic() < deadline, f"tiles not playing: {await tile_stats(page)}"
                await asyncio.sleep(0.2)
            before = await tile_stats(page)
            await asyncio.sleep(1.0)
            after = await tile_stats(page)
            for a, b in zip(before, after, strict=True):
                assert b["frames"] > a["frames"] and b["time"] > a["time"], (a, b)
            assert len(env.wall.relay.upstreams()) == 4

            # Overlays: the detector found people, the browser drew their boxes over tile 0.
            await wait_until(lambda: any(published), "the detector finds people in the footage")
            deadline = time.monotonic() + 20
            while await page.evaluate(OVERLAY_PIXELS, 0) == 0:
                assert time.monotonic() < deadline, "no overlay pixels drawn on the people camera's tile"
                await asyncio.sleep(0.1)
            assert await page.evaluate(OVERLAY_PIXELS, 1) == 0  # no detections published for cam-1

            # A real incident (crowd anomalies through the bus and the case service) arrives live,
            # shows in the alarm panel coloured by grade with its evidence, and is acknowledged.
            raised = asyncio.create_task(raise_crowd(env))
            try:
                alarm = page.locator(".alarm[data-camera='cam-1']")
                await alarm.wait_for(timeout=20000)
            finally:
                raised.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await raised
            assert "grade-orange" in (await alarm.get_attribute("class") or "")
            assert await alarm.locator(".atitle").inner_text() == "人员聚集"
            assert await alarm.locator(".acam").inner_text() == "西城汽车站"
            await alarm.locator(".snapshot").wait_for(state="visible", timeout=10000)
            incident_id = await alarm.get_attribute("data-id")
            await alarm.locator("button.ack").click()
            await page.locator(f".alarm.state-acknowledged[data-id='{incident_id}']").wait_for(timeout=10000)
            assert env.gateway.node.cases is not None
            incident = await env.gateway.node.cases.service.incident(str(incident_id))
            assert incident.acknowledged_by == "op1"

            # PTZ: hold "→" on the dome in tile 0, release; then a preset.
            await page.click(".grid .tile[data-index='0']")
            await page.locator(".ptz").wait_for(state="visible")
            log = env.sim.cameras[0].ptz
            assert log is not None
            right = page.locator(".ptz-pad button[data-pan='1'][data-tilt='0']")
            await right.hover()
            await page.mouse.down()
            await wait_until(lambda: any(c.operation == "ContinuousMove" for c in log.commands), "PTZ move at dome")
            await page.mouse.up()
            await wait_until(lambda: log.commands[-1].operation == "Stop", "PTZ stop on release")
            move = next(c for c in log.commands if c.operation == "ContinuousMove")
            assert move.pan is not None and move.pan > 0 and not move.tilt
            await page.click(".ptz-presets button[data-token='2']")
            await wait_until(lambda: log.commands[-1].operation == "GotoPreset", "PTZ preset")
            assert log.commands[-1].preset_token == "2"

            await page.screenshot(path=str(ARTIFACTS / "wall.png"))

            # The wall is saved on the gateway for this operator.
            await page.fill(".saved-name", "早班")
            await page.click(".saved-save")
            await page.locator(".toast", has_text="已保存").wait_for(timeout=10000)
            saved = await env.wall.saved.load("op1")
            assert [w.name for w in saved.walls] == ["早班"]
            assert saved.walls[0].cameras == ["cam-0", "cam-1", "cam-2", "cam-3"]

            # A tour of two cameras, one at a time, every 5 s: the single tile moves on by itself, and
            # the next camera is warmed up before its turn (its upstream runs with no viewer yet).
            env.wall.settings.grace_s = 6.0
            await page.evaluate(
                "() => xlWall().tours.start({name: 'T', cameras: ['cam-2', 'cam-3'], layout: 1, interval_s: 5})"
            )
            await page.locator(".grid .tile .name", has_text="登科中学门口").wait_for(timeout=10000)

            def warmed() -> bool:
                upstream = env.wall.relay.upstream("cam-3")
                return upstream is not None and not upstream.viewers and len(upstream.gop) > 0

            await wait_until(warmed, "cam-3 warmed up (streaming, keyframe cached, no viewer) before its turn")
            await page.locator(".grid .tile .name", has_text="文治路口").wait_for(timeout=15000)
            deadline = time.monotonic() + 20
            while (await tile_stats(page))[0]["frames"] < 3:
                assert time.monotonic() < deadline, f"the toured camera does not play: {await tile_stats(page)}"
                await asyncio.sleep(0.1)
            await page.click(".tour-stop")
            assert await page.locator(".tour-bar").is_hidden()
            await page.click(".lang-btn >> visible=true")
            assert await page.locator(".brand").inner_text() == "Xueliang · Live wall"
            await page.screenshot(path=str(ARTIFACTS / "wall-tour-en.png"))

            # A technician may log in to the gateway, but not watch the wall.
            other = await (await browser.new_context()).new_page()
            await log_in(other, env.url, "tech1")
            await other.locator(".login-error", has_text="值班员").wait_for(timeout=10000)
    finally:
        detections.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await detections


Fractions = tuple[float, float, float, float]


async def publish_fixed_boxes(env: WallEnv, camera_id: str, size: tuple[int, int], boxes: list[Fractions]) -> None:
    """Boxes at fixed fractions (x1, y1, x2, y2) of a ``size`` analysed frame, as the patrol publishes them."""
    width, height = size
    detections = [
        {"x1": x1 * width, "y1": y1 * height, "x2": x2 * width, "y2": y2 * height, "label": "person", "score": 0.9}
        for x1, y1, x2, y2 in boxes
    ]
    while True:
        data = {"width": width, "height": height, "ts": time.time(), "boxes": detections}
        env.gateway.node.live.publish("detections", camera_id, data)
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def publishing(
    env: WallEnv, camera_id: str, size: tuple[int, int], boxes: list[Fractions]
) -> AsyncIterator[None]:
    publisher = asyncio.create_task(publish_fixed_boxes(env, camera_id, size, boxes))
    try:
        yield
    finally:
        publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publisher


# The label bands tile 0 draws for boxes at the right and left edges of a 400 x 300 picture (a context
# that records fillRect; the text width as the browser measures it).
LABEL_BANDS = """() => {
  const tile = xlWall().tiles[0];
  const bands = [];
  const ctx = {
    measureText: (text) => ({ width: 7 * text.length }),
    fillRect: (left, top, width) => bands.push([left, width]),
    fillText: () => {},
  };
  const picture = { x: 0, y: 0, width: 400, height: 300 };
  for (const x of [395, 340, 2]) tile.drawLabel(ctx, { label: "person", score: 0.9 }, picture, x, 120);
  return bands;
}"""


SHOW_BOXES_ON_A_STOPPED_TILE = """() => {
  const tile = xlWall().tiles[0];
  tile.stop();
  const box = { x1: 20, y1: 20, x2: 300, y2: 250, label: "person", score: 0.9 };
  tile.showDetections({ width: 640, height: 360, ts: Date.now() / 1000, boxes: [box] });
}"""


async def one_tile_wall(browser: Browser, env: WallEnv, camera_id: str, scale: float) -> tuple[Page, dict[str, Any]]:
    """A page at device pixel ratio ``scale`` showing ``camera_id`` alone on the wall, once it plays."""
    context = await browser.new_context(viewport={"width": 1600, "height": 900}, device_scale_factor=scale)
    page = await context.new_page()
    await log_in(page, env.url, "op1")
    await page.wait_for_selector(".tree .group.district", timeout=15000)
    await page.click(".layout-btn[data-layout='1']")
    await page.fill(".tree-search", camera_id)
    await page.click(f".tree .cam[data-id='{camera_id}']")
    deadline = time.monotonic() + 60
    while not ((stats := (await tile_stats(page))[0])["frames"] >= 3 and stats["width"] > 0):
        assert time.monotonic() < deadline, f"the tile does not play: {stats}"
        await asyncio.sleep(0.2)
    return page, stats


@pytest.mark.parametrize("scale", [1, 2])
async def test_boxes_of_a_differently_sized_analysed_frame_land_on_the_displayed_video(
    env: WallEnv, scale: int
) -> None:
    """The patrol analyses the 768x576 (4:3) main picture, the wall plays the 640x360 (16:9) sub stream
    of the same view: a box is drawn at the same fractions of the picture the tile displays, on a
    canvas of the screen's own pixels (CSS size x devicePixelRatio: sharp on a HiDPI screen)."""
    analysed = (768, 576)
    fractions = (0.10, 0.15, 0.35, 0.45)  # away from the centre lines, where both mappings could agree
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with chromium() as browser:
        page, stats = await one_tile_wall(browser, env, "cam-1", scale)
        width, height = stats["width"], stats["height"]
        assert width * analysed[1] != height * analysed[0], f"live video {width}x{height} has the analysed aspect"

        async with publishing(env, "cam-1", analysed, [fractions]):
            args = dict(zip(("fx1", "fy1", "fx2", "fy2"), fractions, strict=True)) | {"index": 0, "tol": 4}
            deadline = time.monotonic() + 20
            while True:
                placed = await page.evaluate(BOX_PLACEMENT, args)
                if placed and placed["boxPixels"] and min(placed["edges"].values()) >= 0.9 and placed["strays"] <= 20:
                    break
                assert time.monotonic() < deadline, f"box not drawn where the video shows it: {placed}"
                await asyncio.sleep(0.2)
            assert placed["ratio"] == scale
            assert placed["canvas"] == [round(side * scale) for side in placed["css"]], placed
            await page.screenshot(path=str(ARTIFACTS / f"wall-box-placement-x{scale}.png"))


async def test_boxes_stop_at_the_picture_edge_and_their_labels_leave_the_box_edge_visible(env: WallEnv) -> None:
    """A box reaching past the right and bottom of the picture and one past its left and top (its label
    then sits inside the picture) draw nothing in the tile's letterbox bands; the label above a box
    leaves the stroke of its top edge whole. At device pixel ratio 2, like a monitor room's screens."""
    spilling = (0.60, 0.60, 1.20, 1.20)
    async with chromium() as browser:
        page, stats = await one_tile_wall(browser, env, "cam-1", 2)
        size = (stats["width"], stats["height"])
        async with publishing(env, "cam-1", size, [spilling, (-0.20, -0.10, 0.30, 0.40)]):
            args = {"index": 0, "fx1": spilling[0], "fy1": spilling[1]}
            deadline = time.monotonic() + 20
            while not ((clip := await page.evaluate(OVERLAY_CLIP, args)) and clip["inside"]):
                assert time.monotonic() < deadline, f"no boxes drawn on the tile: {clip}"
                await asyncio.sleep(0.2)
            await page.screenshot(path=str(ARTIFACTS / "wall-box-clipped.png"))
        assert clip["bands"] >= 20, f"the tile shows no letterbox band to spill into: {clip}"
        assert clip["outside"] == 0, f"overlay pixels drawn in the letterbox bands: {clip}"
        assert clip["topEdge"] >= 0.95, f"the label covers the box's top edge: {clip}"
        # A person walking in at the right edge: the label band stays whole inside the picture (old
        # code kept it off the left side only, so the clip cut "person 90%" to "pers").
        bands = await page.evaluate(LABEL_BANDS)
        assert bands and all(left >= 0 and left + width <= 400 for left, width in bands), bands
        # A tile that shows no picture (stopped, waiting to reconnect) lays no boxes over black, even
        # when detections for its camera keep coming (old code drew them on the analysed frame's size).
        await page.evaluate(SHOW_BOXES_ON_A_STOPPED_TILE)
        await asyncio.sleep(0.6)  # two of the wall's redraw periods
        assert await page.evaluate(OVERLAY_PIXELS, 0) == 0


async def test_the_overlay_is_cleared_once_past_the_box_ttl_then_not_redrawn_until_new_boxes(env: WallEnv) -> None:
    """Boxes stop coming: once past their time-to-live the overlay is empty, and the wall stops redrawing
    it (no redraw in four of its 250 ms periods); new boxes draw it again."""
    box = (0.30, 0.30, 0.60, 0.70)
    async with chromium() as browser:
        page, stats = await one_tile_wall(browser, env, "cam-1", 1)
        size = (stats["width"], stats["height"])
        async with publishing(env, "cam-1", size, [box]):
            deadline = time.monotonic() + 20
            while await page.evaluate(OVERLAY_PIXELS, 0) == 0:
                assert time.monotonic() < deadline, "no boxes drawn on the tile"
                await asyncio.sleep(0.1)
        deadline = time.monotonic() + 20
        while await page.evaluate(OVERLAY_PIXELS, 0):
            assert time.monotonic() < deadline, "boxes still shown long after their time-to-live"
            await asyncio.sleep(0.1)
        await page.evaluate(COUNT_DRAWS, 0)
        await asyncio.sleep(1.0)
        assert await page.evaluate("() => window.xlDraws") == 0, "the empty overlay is still being redrawn"
        assert await page.evaluate(OVERLAY_PIXELS, 0) == 0

        async with publishing(env, "cam-1", size, [box]):
            deadline = time.monotonic() + 20
            while await page.evaluate(OVERLAY_PIXELS, 0) == 0:
                assert time.monotonic() < deadline, "new boxes not drawn after the overlay went idle"
                await asyncio.sleep(0.1)
        assert await page.evaluate("() => window.xlDraws") > 0
