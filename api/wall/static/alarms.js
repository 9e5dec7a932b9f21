// The alarm panel: incidents as they arrive over the feed, coloured by grade (blue/orange/red),
// with the evidence snapshot and the actions acknowledge / dismiss with reason / escalate / jump.

import { auth, call } from "./api.js";
import { lang, ruleName, t } from "./i18n.js";

const MAX_ITEMS = 200;
const FINAL = new Set(["dismissed", "closed"]);

function pick(data, ...keys) {
  for (const key of keys) if (data[key] !== undefined && data[key] !== null && data[key] !== "") return data[key];
  return "";
}

export class AlarmPanel {
  constructor(root, wall) {
    this.root = root;
    this.wall = wall;
    this.list = root.querySelector(".alarm-list");
    this.count = root.querySelector(".alarm-count");
    this.items = new Map();
  }

  // An "incident" feed item: a new or updated incident, or a state change {id, state, by, reason}.
  onIncident(cameraId, data) {
    const id = String(pick(data, "id", "incident_id"));
    if (!id) return;
    const known = this.items.get(id);
    const merged = { ...(known ? known.data : {}), ...data, id };
    if (cameraId) merged.camera_id = cameraId;
    if (known) {
      known.data = merged;
      this.fill(known);
    } else {
      const item = { data: merged, el: document.createElement("div") };
      this.items.set(id, item);
      this.fill(item);
      this.list.prepend(item.el);
      while (this.items.size > MAX_ITEMS) {
        const [oldId, old] = this.items.entries().next().value;
        old.el.remove();
        this.items.delete(oldId);
      }
    }
    this.renderCount();
  }

  renderCount() {
    const open = [...this.items.values()].filter((i) => !i.data.state || i.data.state === "open").length;
    this.count.textContent = open ? String(open) : "";
    this.root.querySelector(".alarm-empty").hidden = this.items.size > 0;
  }

  title(data) {
    const own = lang() === "zh" ? pick(data, "title_zh", "title") : pick(data, "title_en", "title");
    return own || ruleName(data.rule);
  }

  fill(item) {
    const d = item.data;
    const grade = ["blue", "orange", "red"].includes(d.grade) ? d.grade : "blue";
    const state = d.state || "open";
    const camera = this.wall.camera(d.camera_id);
    const el = item.el;
    el.className = `alarm grade-${grade} state-${state}`;
    el.dataset.id = d.id;
    el.dataset.camera = d.camera_id || "";
    const when = pick(d, "last_seen", "first_seen", "at");
    el.innerHTML = `
      <div class="alarm-head">
        <span class="grade"></span><span class="atitle"></span><span class="astate"></span>
      </div>
      <div class="alarm-body">
        <img class="snapshot" alt="" hidden>
        <div class="ameta"><div class="acam"></div><div class="atime"></div><div class="acode"></div></div>
      </div>
      <div class="alarm-actions">
        <button type="button" class="ack"></button>
        <button type="button" class="dismiss"></button>
        <button type="button" class="escalate"></button>
        <button type="button" class="jump"></button>
      </div>
      <form class="dismiss-form" hidden>
        <input class="reason" required maxlength="500">
        <button type="submit" class="ok"></button><button type="button" class="no"></button>
      </form>`;
    el.querySelector(".grade").textContent = t(`grade_${grade}`);
    el.querySelector(".atitle").textContent = this.title(d);
    el.querySelector(".astate").textContent = t(`state_${state}`);
    el.querySelector(".acam").textContent = camera ? camera.name : d.camera_name || d.camera_id || "";
    el.querySelector(".atime").textContent = when ? new Date(when).toLocaleString(lang() === "zh" ? "zh-CN" : "en") : "";
    el.querySelector(".acode").textContent = d.case_code || "";
    this.snapshot(el.querySelector(".snapshot"), d);
    const buttons = { ack: "ack", dismiss: "dismiss", escalate: "escalate", jump: "jump" };
    for (const [cls, key] of Object.entries(buttons)) el.querySelector(`.${cls}`).textContent = t(key);
    const final = FINAL.has(state);
    el.querySelector(".ack").disabled = final || state === "acknowledged" || state === "escalated";
    el.querySelector(".dismiss").disabled = final;
    el.querySelector(".escalate").disabled = final || state === "escalated";
    const form = el.querySelector(".dismiss-form");
    form.querySelector(".reason").placeholder = t("dismiss_reason");
    form.querySelector(".ok").textContent = t("confirm");
    form.querySelector(".no").textContent = t("cancel");
    el.querySelector(".ack").onclick = () => this.act(d.id, "ack");
    el.querySelector(".escalate").onclick = () => this.act(d.id, "escalate");
    el.querySelector(".jump").onclick = () => d.camera_id && this.wall.jumpTo(d.camera_id);
    el.querySelector(".dismiss").onclick = () => {
      form.hidden = false;
      form.querySelector(".reason").focus();
    };
    form.querySelector(".no").onclick = () => (form.hidden = true);
    form.onsubmit = (e) => {
      e.preventDefault();
      this.act(d.id, "dismiss", { reason: form.querySelector(".reason").value.trim() });
    };
  }

  // The evidence picture: a data: URL as is, otherwise fetched with the login token.
  async snapshot(img, data) {
    const url = pick(data, "snapshot_url", "evidence_url", "snapshot") || (data.evidence && data.evidence.url) || "";
    if (!url) return;
    if (url.startsWith("data:")) {
      img.src = url;
      img.hidden = false;
      return;
    }
    try {
      const response = await fetch(url, { headers: { Authorization: `Bearer ${auth.token}` } });
      if (!response.ok) return;
      img.src = URL.createObjectURL(await response.blob());
      img.onload = () => URL.revokeObjectURL(img.src);
      img.hidden = false;
    } catch {
      /* the picture is optional */
    }
  }

  async act(id, action, body) {
    const item = this.items.get(id);
    try {
      const result = await call(`/api/incidents/${encodeURIComponent(id)}/${action}`, { method: "POST", body: body ?? {} });
      const state = { ack: "acknowledged", dismiss: "dismissed", escalate: "escalated" }[action];
      const data = result && typeof result === "object" && result.id === id ? result : {};
      if (result && result.code) data.case_code = result.code; // escalate answers with the new case
      if (item) this.onIncident("", { ...data, id, state });
    } catch (error) {
      this.wall.toast(t("error_of", { what: t(action), detail: error.message }), true);
    }
  }

  retranslate() {
    for (const item of this.items.values()) this.fill(item);
    this.renderCount();
  }
}
