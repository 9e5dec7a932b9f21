// The wall page: login, layouts 1/4/9/16, tiles, camera tree, alarm panel, PTZ, saved walls and
// tours, and the live feed (WebSocket /api/wall/ws: detections for overlays, incidents, statuses).

import { auth, call, login, mayWatch, whoAmI } from "./api.js";
import { AlarmPanel } from "./alarms.js";
import { applyTexts, t, toggleLang } from "./i18n.js";
import { PtzPanel } from "./ptz.js";
import { SavedWalls, Tours } from "./saved.js";
import { Tile } from "./tile.js";
import { CameraTree } from "./tree.js";

const LAYOUTS = [1, 4, 9, 16];
const FEED_RETRY_MAX_MS = 10000;

class Wall {
  constructor() {
    this.layout = 4;
    this.tiles = [];
    this.selected = 0;
    this.cameras = new Map();
    this.feed = null;
    this.feedRetryMs = 500;
    this.grid = document.querySelector(".grid");
    this.tree = new CameraTree(document.querySelector(".tree"), this);
    this.alarms = new AlarmPanel(document.querySelector(".alarms"), this);
    this.ptz = new PtzPanel(document.querySelector(".ptz"), this);
    this.tours = new Tours(document.querySelector(".tour-bar"), this);
    this.saved = new SavedWalls(document.querySelector(".saved"), this);
    for (const n of LAYOUTS) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "layout-btn";
      button.dataset.layout = n;
      button.textContent = String(n);
      button.addEventListener("click", () => {
        this.tours.stop();
        this.setLayout(n);
      });
      document.querySelector(".layouts").append(button);
    }
    document.querySelector(".logout-btn").addEventListener("click", () => this.logout());
    setInterval(() => this.tick(), 1000);
    // Leaving the page ends its sessions at once (keepalive DELETEs) instead of at ICE timeout.
    window.addEventListener("pagehide", () => this.tiles.forEach((tile) => tile.stop()));
    window.addEventListener("pageshow", (e) => e.persisted && this.tiles.forEach((tile) => tile.camera && tile.start()));
    // Overlays follow tile resizes while they hold boxes; a tile's redraw past the boxes' time-to-live
    // clears it once and drops them, so an idle wall redraws nothing until new boxes arrive.
    setInterval(() => this.tiles.forEach((tile) => tile.boxes && tile.drawOverlay()), 250);
  }

  camera(id) {
    return this.cameras.get(id) || null;
  }

  async open() {
    const cameras = await call("/api/wall/cameras");
    this.cameras = new Map(cameras.map((c) => [c.id, c]));
    this.tree.setCameras(cameras);
    await this.saved.load();
    // The wall this browser showed last; on a first visit, the operator's first saved wall.
    const last = JSON.parse(localStorage.getItem(`xl.wall.current.${auth.user}`) || "null")
      || this.saved.doc.walls?.[0] || null;
    this.setLayout(last?.layout || 4, last?.cameras || []);
    this.connectFeed();
    document.querySelector(".user").textContent = auth.user;
  }

  setLayout(n, cameraIds) {
    const ids = cameraIds ?? this.tiles.map((tile) => tile.camera?.id ?? null);
    this.layout = n;
    while (this.tiles.length > n) this.tiles.pop().setCamera(null);
    while (this.tiles.length < n) {
      const tile = new Tile(this.tiles.length, this);
      this.tiles.push(tile);
      tile.texts();
    }
    this.grid.replaceChildren(...this.tiles.map((tile) => tile.el));
    this.grid.dataset.layout = n;
    this.tiles.forEach((tile, i) => tile.setCamera(this.camera(ids[i]) || null));
    for (const b of document.querySelectorAll(".layout-btn")) b.classList.toggle("active", Number(b.dataset.layout) === n);
    this.select(Math.min(this.selected, n - 1));
    this.changed();
  }

  place(index, cameraId) {
    this.tiles[index].setCamera(cameraId ? this.camera(cameraId) : null);
    this.select(index);
    this.changed();
  }

  // Click in the tree: the selected tile if empty, else the next empty one, else the selected one.
  placeSelected(cameraId) {
    this.tours.stop();
    const selected = this.tiles[this.selected];
    let index = this.selected;
    if (selected.camera) {
      const empty = this.tiles.findIndex((tile) => !tile.camera);
      if (empty >= 0) index = empty;
    }
    this.place(index, cameraId);
  }

  jumpTo(cameraId) {
    const index = this.tiles.findIndex((tile) => tile.camera?.id === cameraId);
    if (index >= 0) {
      this.select(index);
      this.tiles[index].el.classList.add("flash");
      setTimeout(() => this.tiles[index].el.classList.remove("flash"), 1500);
      return;
    }
    this.tours.stop();
    this.place(this.selected, cameraId);
  }

  select(index) {
    this.selected = index;
    this.tiles.forEach((tile, i) => tile.el.classList.toggle("selected", i === index));
    this.ptz.setCamera(this.tiles[index]?.camera || null);
  }

  changed() {
    const cameras = this.tiles.map((tile) => tile.camera?.id ?? null);
    localStorage.setItem(`xl.wall.current.${auth.user}`, JSON.stringify({ layout: this.layout, cameras }));
    this.sendWatch();
  }

  tick() {
    const now = performance.now();
    this.tiles.forEach((tile) => tile.watchdog(now));
  }

  // --- the live feed ------------------------------------------------------------------------------

  connectFeed() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/api/wall/ws`);
    this.feed = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: "auth", token: auth.token }));
    ws.onmessage = (event) => this.onFeed(JSON.parse(event.data));
    ws.onclose = (event) => {
      if (this.feed !== ws) return;
      this.feed = null;
      document.body.classList.add("feed-down");
      document.querySelector(".brand").title = t("feed_down");
      if (event.code === 4401) return auth.onExpired();
      const wait = this.feedRetryMs;
      this.feedRetryMs = Math.min(this.feedRetryMs * 2, FEED_RETRY_MAX_MS);
      setTimeout(() => auth.token && this.connectFeed(), wait);
    };
  }

  sendWatch() {
    if (this.feed && this.feed.readyState === WebSocket.OPEN) {
      const cameras = this.tiles.map((tile) => tile.camera?.id).filter(Boolean);
      this.feed.send(JSON.stringify({ type: "watch", cameras }));
    }
  }

  onFeed(message) {
    switch (message.type) {
      case "hello":
        this.feedRetryMs = 500;
        document.body.classList.remove("feed-down");
        document.querySelector(".brand").title = "";
        this.sendWatch();
        break;
      case "detections":
        for (const tile of this.tiles) if (tile.camera?.id === message.camera_id) tile.showDetections(message.data);
        break;
      case "incident":
        this.alarms.onIncident(message.camera_id, message.data);
        break;
      case "camera_status": {
        const status = message.data.status || message.data.new; // {old, new, ...} from the camera service
        const cam = this.camera(message.camera_id);
        if (cam && status) {
          cam.status = status;
          this.tree.setStatus(cam.id, status);
          for (const tile of this.tiles) if (tile.camera?.id === cam.id) tile.renderLabel();
        }
        break;
      }
      default:
        break;
    }
  }

  // --- page ---------------------------------------------------------------------------------------

  toast(text, error = false) {
    const el = document.querySelector(".toast");
    el.textContent = text;
    el.classList.toggle("error", error);
    el.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => (el.hidden = true), 4000);
  }

  retranslate() {
    applyTexts(document);
    this.tiles.forEach((tile) => tile.texts());
    this.tree.render();
    this.alarms.retranslate();
    this.saved.render();
    this.tours.render();
  }

  logout() {
    this.tours.stop();
    this.tiles.forEach((tile) => tile.setCamera(null));
    const feed = this.feed;
    this.feed = null;
    if (feed) feed.close();
    auth.set("");
    showLogin("");
  }
}

let wall = null;

function showLogin(message) {
  document.body.classList.add("logged-out");
  document.querySelector(".login-error").textContent = message;
}

async function enter() {
  if (!mayWatch()) {
    auth.set("");
    showLogin(t("need_operator"));
    return;
  }
  document.body.classList.remove("logged-out");
  wall = wall || new Wall();
  await wall.open();
}

auth.onExpired = () => {
  if (wall) wall.logout();
  showLogin(t("session_expired"));
};

document.querySelector(".login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  try {
    await login(form.username.value, form.password.value);
    form.password.value = "";
    await enter();
  } catch (error) {
    auth.set("");
    showLogin(error.status === 401 ? t("login_failed") : error.message);
  }
});

for (const button of document.querySelectorAll(".lang-btn")) {
  button.addEventListener("click", () => {
    toggleLang();
    if (wall) wall.retranslate();
    else applyTexts(document);
  });
}

applyTexts(document);
if (auth.token) {
  whoAmI().then(enter, () => showLogin(""));
} else {
  showLogin("");
}
window.xlWall = () => wall;
