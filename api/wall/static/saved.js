// Saved walls and tours, per operator. Kept on the gateway (GET/PUT /api/wall/saved, a JSON file
// per user: it follows the operator to any console) and mirrored in this browser's localStorage
// under a key naming the user, so the list still opens while the gateway is unreachable.

import { auth, call } from "./api.js";

const WARM_AHEAD_S = 3; // the next step's cameras are started this long before they are shown
import { t } from "./i18n.js";

function storageKey() {
  return `xl.wall.saved.${auth.user}`;
}

export class SavedWalls {
  constructor(root, wall) {
    this.root = root;
    this.wall = wall;
    this.doc = { walls: [], tours: [] };
    this.select = root.querySelector(".saved-select");
    this.name = root.querySelector(".saved-name");
    root.querySelector(".saved-save").addEventListener("click", () => this.saveCurrent());
    root.querySelector(".saved-delete").addEventListener("click", () => this.deleteSelected());
    this.select.addEventListener("change", () => this.recall(this.select.value));
  }

  async load() {
    const local = localStorage.getItem(storageKey());
    if (local) this.doc = JSON.parse(local);
    try {
      this.doc = await call("/api/wall/saved");
      localStorage.setItem(storageKey(), JSON.stringify(this.doc));
    } catch (error) {
      if (error.status !== 401) this.wall.toast(t("offline_copy"), true);
    }
    this.render();
  }

  async store() {
    localStorage.setItem(storageKey(), JSON.stringify(this.doc));
    try {
      this.doc = await call("/api/wall/saved", { method: "PUT", body: { walls: this.doc.walls, tours: this.doc.tours } });
      localStorage.setItem(storageKey(), JSON.stringify(this.doc));
      this.wall.toast(t("saved_ok"));
    } catch (error) {
      this.wall.toast(t("error_of", { what: t("save_failed"), detail: error.message }), true);
    }
    this.render();
  }

  render() {
    const keep = this.select.value;
    this.select.replaceChildren(new Option(t("choose"), ""));
    const walls = document.createElement("optgroup");
    walls.label = t("saved_walls");
    this.doc.walls.forEach((w) => walls.append(new Option(w.name, `wall:${w.name}`)));
    const tours = document.createElement("optgroup");
    tours.label = t("tours");
    this.doc.tours.forEach((tour) => tours.append(new Option(`▶ ${tour.name}`, `tour:${tour.name}`)));
    this.select.append(walls, tours);
    this.select.value = keep;
  }

  saveCurrent() {
    const name = this.name.value.trim();
    if (!name) {
      this.name.focus();
      return;
    }
    const entry = { name, layout: this.wall.layout, cameras: this.wall.tiles.map((tile) => tile.camera?.id ?? null) };
    this.doc.walls = [...this.doc.walls.filter((w) => w.name !== name), entry];
    this.name.value = "";
    this.store();
  }

  saveTour(tour) {
    const entry = { name: tour.name.slice(0, 64), layout: tour.layout, cameras: tour.cameras.slice(0, 1000), interval_s: tour.interval_s };
    this.doc.tours = [...this.doc.tours.filter((x) => x.name !== entry.name), entry];
    this.store();
  }

  deleteSelected() {
    const [kind, ...rest] = this.select.value.split(":");
    const name = rest.join(":");
    if (!name) return;
    if (kind === "wall") this.doc.walls = this.doc.walls.filter((w) => w.name !== name);
    else this.doc.tours = this.doc.tours.filter((x) => x.name !== name);
    this.select.value = "";
    this.store();
  }

  recall(value) {
    const [kind, ...rest] = value.split(":");
    const name = rest.join(":");
    if (kind === "wall") {
      const saved = this.doc.walls.find((w) => w.name === name);
      if (saved) {
        this.wall.tours.stop();
        this.wall.setLayout(saved.layout, saved.cameras);
      }
    } else if (kind === "tour") {
      const tour = this.doc.tours.find((x) => x.name === name);
      if (tour) this.wall.tours.start(tour);
    }
  }
}

// A tour puts `layout` cameras at a time on the wall and moves on every `interval_s` seconds.
export class Tours {
  constructor(root, wall) {
    this.root = root;
    this.wall = wall;
    this.tour = null;
    this.page = 0;
    this.timer = 0;
    this.warmTimer = 0;
    this.paused = false;
    this.status = root.querySelector(".tour-status");
    this.interval = root.querySelector(".tour-interval");
    root.querySelector(".tour-pause").addEventListener("click", () => this.togglePause());
    root.querySelector(".tour-stop").addEventListener("click", () => this.stop());
    root.querySelector(".tour-save").addEventListener("click", () => this.tour && this.wall.saved.saveTour(this.tour));
    this.interval.addEventListener("change", () => {
      if (!this.tour) return;
      this.tour.interval_s = Math.max(5, Number(this.interval.value) || 15);
      this.show();
    });
  }

  start(tour) {
    this.stop();
    const interval = Math.max(5, Number(tour.interval_s || this.interval.value) || 15);
    this.tour = { name: tour.name, cameras: tour.cameras, layout: tour.layout || this.wall.layout, interval_s: interval };
    this.interval.value = interval;
    this.page = 0;
    this.paused = false;
    this.root.hidden = false;
    this.show();
  }

  pages() {
    return Math.max(1, Math.ceil(this.tour.cameras.length / this.tour.layout));
  }

  show() {
    if (!this.tour) return;
    const n = this.tour.layout;
    const ids = this.tour.cameras.slice(this.page * n, this.page * n + n);
    this.wall.setLayout(n, ids);
    this.render();
    clearTimeout(this.timer);
    clearTimeout(this.warmTimer);
    if (this.paused) return;
    this.timer = setTimeout(() => this.next(), this.tour.interval_s * 1000);
    const ahead = Math.max(1, this.tour.interval_s - WARM_AHEAD_S) * 1000;
    this.warmTimer = setTimeout(() => this.warmNext(), ahead);
  }

  // Start the next step's upstreams now, so their first picture is there when they are shown.
  warmNext() {
    if (!this.tour || this.pages() < 2) return;
    const n = this.tour.layout;
    const page = (this.page + 1) % this.pages();
    const cameras = this.tour.cameras.slice(page * n, page * n + n);
    call("/api/wall/warm", { method: "POST", body: { cameras } }).catch(() => {});
  }

  next() {
    this.page = (this.page + 1) % this.pages();
    this.show();
  }

  togglePause() {
    if (!this.tour) return;
    this.paused = !this.paused;
    if (this.paused) {
      clearTimeout(this.timer);
      clearTimeout(this.warmTimer);
    } else this.show();
    this.render();
  }

  stop() {
    clearTimeout(this.timer);
    clearTimeout(this.warmTimer);
    this.tour = null;
    this.root.hidden = true;
  }

  render() {
    if (!this.tour) return;
    const values = { name: this.tour.name, page: this.page + 1, pages: this.pages() };
    this.status.textContent = t(this.paused ? "tour_paused" : "tour_running", values);
    this.root.querySelector(".tour-pause").textContent = t(this.paused ? "resume" : "pause");
  }
}
