// The camera tree: district > township > grid > camera, with search and status colours.
// Big lists stay light: a group renders its children only when opened; search shows a flat list.

import { t } from "./i18n.js";

const MAX_RESULTS = 300;

export class CameraTree {
  constructor(root, wall) {
    this.root = root;
    this.wall = wall;
    this.cameras = new Map();
    this.tree = new Map();
    this.query = "";
    this.list = root.querySelector(".tree-list");
    this.info = root.querySelector(".tree-info");
    root.querySelector(".tree-search").addEventListener("input", (e) => {
      this.query = e.target.value.trim().toLowerCase();
      this.render();
    });
  }

  setCameras(cameras) {
    this.cameras = new Map(cameras.map((c) => [c.id, c]));
    this.tree = new Map();
    for (const cam of cameras) {
      const loc = cam.location || {};
      const d = loc.district || "";
      const tw = loc.township || "";
      const g = loc.grid_code || "";
      if (!this.tree.has(d)) this.tree.set(d, new Map());
      const towns = this.tree.get(d);
      if (!towns.has(tw)) towns.set(tw, new Map());
      const grids = towns.get(tw);
      if (!grids.has(g)) grids.set(g, []);
      grids.get(g).push(cam);
    }
    this.render();
  }

  setStatus(cameraId, status) {
    const cam = this.cameras.get(cameraId);
    if (!cam) return;
    cam.status = status;
    for (const dot of this.list.querySelectorAll(`.cam[data-id="${CSS.escape(cameraId)}"] .dot`)) {
      dot.className = `dot status-${status}`;
    }
  }

  render() {
    this.list.replaceChildren();
    if (this.query) return this.renderSearch();
    this.info.textContent = `${t("cameras")}: ${this.cameras.size}`;
    const sorted = (map) => [...map.entries()].sort((a, b) => a[0].localeCompare(b[0], "zh"));
    for (const [district, towns] of sorted(this.tree)) {
      const dCams = [...towns.values()].flatMap((grids) => [...grids.values()].flat());
      const dNode = this.group(district || t("unknown_district"), dCams, "district");
      dNode.fill = () => {
        for (const [township, grids] of sorted(towns)) {
          const tCams = [...grids.values()].flat();
          const tNode = this.group(township || t("unknown_township"), tCams, "township");
          tNode.fill = () => {
            for (const [grid, cams] of sorted(grids)) {
              const gNode = this.group(grid || t("unknown_grid"), cams, "grid");
              gNode.fill = () => cams.forEach((cam) => gNode.body.append(this.item(cam)));
              tNode.body.append(gNode.el);
            }
          };
          dNode.body.append(tNode.el);
        }
      };
      this.list.append(dNode.el);
    }
  }

  renderSearch() {
    const q = this.query;
    const hits = [];
    for (const cam of this.cameras.values()) {
      const loc = cam.location || {};
      const text = [cam.name, cam.id, loc.district, loc.township, loc.grid_code, loc.address].join(" ").toLowerCase();
      if (text.includes(q)) hits.push(cam);
    }
    this.info.textContent = hits.length ? t("matches", { n: hits.length }) : t("no_match");
    const shown = hits.slice(0, MAX_RESULTS);
    const node = this.group(t("matches", { n: hits.length }), hits, "search");
    node.el.open = true;
    shown.forEach((cam) => node.body.append(this.item(cam)));
    this.list.append(node.el);
  }

  group(title, cameras, level) {
    const el = document.createElement("details");
    el.className = `group ${level}`;
    const summary = document.createElement("summary");
    const online = cameras.filter((c) => c.status === "online").length;
    summary.innerHTML = `<span class="gname"></span><span class="count">${online}/${cameras.length}</span>`;
    summary.querySelector(".gname").textContent = title;
    const tour = document.createElement("button");
    tour.type = "button";
    tour.className = "tour-btn";
    tour.textContent = "▶";
    tour.title = t("tour_this");
    tour.addEventListener("click", (e) => {
      e.preventDefault();
      e.stopPropagation();
      this.wall.tours.start({ name: title, cameras: cameras.map((c) => c.id) });
    });
    summary.append(tour);
    const body = document.createElement("div");
    body.className = "group-body";
    el.append(summary, body);
    const node = { el, body, fill: null, filled: false };
    el.addEventListener("toggle", () => {
      if (el.open && !node.filled && node.fill) {
        node.filled = true;
        node.fill();
      }
    });
    return node;
  }

  item(cam) {
    const el = document.createElement("div");
    el.className = "cam";
    el.dataset.id = cam.id;
    el.draggable = true;
    el.innerHTML = `<span class="dot status-${cam.status}"></span><span class="cname"></span>${cam.ptz ? '<span class="ptz-tag">PTZ</span>' : ""}`;
    el.querySelector(".cname").textContent = cam.name;
    el.title = `${cam.id} · ${t(`status_${cam.status}`)}${cam.location?.address ? " · " + cam.location.address : ""}`;
    el.addEventListener("click", () => this.wall.placeSelected(cam.id));
    el.addEventListener("dragstart", (e) => {
      e.dataTransfer.setData("text/x-camera", cam.id);
      e.dataTransfer.effectAllowed = "copy";
    });
    return el;
  }
}
