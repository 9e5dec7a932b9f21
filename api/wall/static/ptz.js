// PTZ for the selected tile's camera: press and hold = continuous move (repeated while held, each
// move stopping by itself after MOVE_TIMEOUT_S), release = stop; presets go to a stored position.

import { call } from "./api.js";
import { t } from "./i18n.js";

const MOVE_TIMEOUT_S = 2;
const REPEAT_MS = 1000;
const DIRECTIONS = [
  ["↖", -1, 1, 0], ["↑", 0, 1, 0], ["↗", 1, 1, 0],
  ["←", -1, 0, 0], null, ["→", 1, 0, 0],
  ["↙", -1, -1, 0], ["↓", 0, -1, 0], ["↘", 1, -1, 0],
];

export class PtzPanel {
  constructor(root, wall) {
    this.root = root;
    this.wall = wall;
    this.camera = null;
    this.holding = null;
    this.build();
  }

  build() {
    const pad = this.root.querySelector(".ptz-pad");
    for (const dir of DIRECTIONS) {
      const button = document.createElement("button");
      button.type = "button";
      if (!dir) {
        button.className = "ptz-stop";
        button.textContent = "■";
        button.dataset.i18nTitle = "stop";
        button.addEventListener("click", () => this.send({ action: "stop" }));
      } else {
        const [label, pan, tilt] = dir;
        button.textContent = label;
        button.className = "ptz-dir";
        button.dataset.pan = pan;
        button.dataset.tilt = tilt;
        this.holdable(button, () => ({ pan, tilt, zoom: 0 }));
      }
      pad.append(button);
    }
    this.holdable(this.root.querySelector(".zoom-in"), () => ({ pan: 0, tilt: 0, zoom: 1 }));
    this.holdable(this.root.querySelector(".zoom-out"), () => ({ pan: 0, tilt: 0, zoom: -1 }));
    this.speed = this.root.querySelector(".ptz-speed");
    this.presets = this.root.querySelector(".ptz-presets");
  }

  holdable(button, vector) {
    const press = (e) => {
      e.preventDefault();
      button.setPointerCapture?.(e.pointerId);
      this.release();
      const speed = Number(this.speed.value) / 100;
      const v = vector();
      const move = { action: "move", pan: v.pan * speed, tilt: v.tilt * speed, zoom: v.zoom * speed, timeout_s: MOVE_TIMEOUT_S };
      this.send(move);
      this.holding = { button, timer: setInterval(() => this.send(move), REPEAT_MS) };
      button.classList.add("held");
    };
    button.addEventListener("pointerdown", press);
    for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
      button.addEventListener(type, () => this.release());
    }
  }

  release() {
    if (!this.holding) return;
    clearInterval(this.holding.timer);
    this.holding.button.classList.remove("held");
    this.holding = null;
    this.send({ action: "stop" });
  }

  setCamera(camera) {
    this.release();
    this.camera = camera && camera.ptz ? camera : null;
    this.root.hidden = !this.camera;
    this.presets.replaceChildren();
    if (!this.camera) return;
    this.root.querySelector(".ptz-camera").textContent = this.camera.name;
    for (const [token, name] of Object.entries(this.camera.presets || {})) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "preset";
      button.dataset.token = token;
      button.textContent = name || token;
      button.addEventListener("click", () => this.send({ action: "preset", preset: token }));
      this.presets.append(button);
    }
  }

  async send(body) {
    if (!this.camera) return;
    try {
      await call(`/api/cameras/${encodeURIComponent(this.camera.id)}/ptz`, { method: "POST", body });
    } catch (error) {
      this.wall.toast(t("error_of", { what: t("ptz"), detail: error.message }), true);
    }
  }
}
