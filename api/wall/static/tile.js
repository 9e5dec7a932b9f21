// One tile of the wall: a WebRTC viewer of one camera (WHEP), its overlay canvas and its label.
// Reconnects on its own: peer failed/closed, or no new frame for STALL_MS while on the wall.

import { whepStart, whepStop } from "./api.js";
import { t } from "./i18n.js";

const STALL_MS = 8000;
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 15000;
const BOX_TTL_MS = 1500;
const LINE_WIDTH = 2; // CSS pixels
const LABEL_HEIGHT = 16;
const ICE_GATHER_MS = 2000;

function waitIceGathering(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => pc.iceGatheringState === "complete" && done();
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(done, ICE_GATHER_MS);
  });
}

function preferH264(transceiver) {
  const caps = RTCRtpReceiver.getCapabilities && RTCRtpReceiver.getCapabilities("video");
  if (!caps || !transceiver.setCodecPreferences) return;
  const h264 = caps.codecs.filter((c) => c.mimeType.toLowerCase() === "video/h264");
  const rest = caps.codecs.filter((c) => c.mimeType.toLowerCase() !== "video/h264");
  transceiver.setCodecPreferences([...h264, ...rest]);
}

export class Tile {
  constructor(index, wall) {
    this.index = index;
    this.wall = wall;
    this.camera = null;
    this.pc = null;
    this.location = null;
    this.state = "idle";
    this.retryMs = RETRY_MIN_MS;
    this.retryTimer = 0;
    this.lastFrames = 0;
    this.lastProgress = 0;
    this.boxes = null;
    this.boxesAt = 0;
    this.generation = 0;
    this.el = this.build();
  }

  build() {
    const el = document.createElement("div");
    el.className = "tile";
    el.dataset.index = this.index;
    el.innerHTML = `
      <video muted autoplay playsinline></video>
      <canvas class="overlay"></canvas>
      <div class="placeholder"></div>
      <div class="label"><span class="dot"></span><span class="name"></span><span class="state"></span></div>
      <div class="tools">
        <button class="full" type="button">⛶</button>
        <button class="close" type="button">✕</button>
      </div>`;
    this.video = el.querySelector("video");
    this.canvas = el.querySelector("canvas");
    el.querySelector(".full").addEventListener("click", (e) => {
      e.stopPropagation();
      this.toggleFullscreen();
    });
    el.querySelector(".close").addEventListener("click", (e) => {
      e.stopPropagation();
      this.wall.place(this.index, null);
    });
    el.addEventListener("click", () => this.wall.select(this.index));
    el.addEventListener("dblclick", () => this.toggleFullscreen());
    el.addEventListener("dragover", (e) => {
      e.preventDefault();
      el.classList.add("drop");
    });
    el.addEventListener("dragleave", () => el.classList.remove("drop"));
    el.addEventListener("drop", (e) => {
      e.preventDefault();
      el.classList.remove("drop");
      const id = e.dataTransfer.getData("text/x-camera");
      if (id) this.wall.place(this.index, id);
    });
    return el;
  }

  toggleFullscreen() {
    if (document.fullscreenElement === this.el) document.exitFullscreen();
    else this.el.requestFullscreen().catch(() => this.el.classList.toggle("maximized"));
  }

  texts() {
    this.el.querySelector(".placeholder").textContent = this.camera ? "" : t("drop_here");
    this.el.querySelector(".full").title = t("fullscreen");
    this.el.querySelector(".close").title = t("close_tile");
    this.renderLabel();
  }

  renderLabel() {
    const cam = this.camera;
    this.el.classList.toggle("empty", !cam);
    this.el.querySelector(".name").textContent = cam ? cam.name : "";
    const dot = this.el.querySelector(".dot");
    dot.className = `dot status-${cam ? cam.status : "none"}`;
    dot.title = cam ? t(`status_${cam.status}`) : "";
    this.el.querySelector(".state").textContent = cam ? t(this.state === "idle" ? "connecting" : this.state) : "";
    this.el.querySelector(".state").className = `state st-${this.state}`;
  }

  setCamera(camera) {
    if (this.camera && camera && this.camera.id === camera.id) return;
    this.stop();
    this.camera = camera;
    this.why("");
    this.retryMs = RETRY_MIN_MS;
    this.texts();
    if (camera) this.start();
  }

  setState(state) {
    this.state = state;
    if (state === "playing") this.why("");
    this.renderLabel();
  }

  // Why the tile is not playing (the gateway's message, Chinese first), shown as the state's tooltip.
  why(message) {
    this.el.querySelector(".state").title = message;
  }

  async start() {
    const generation = ++this.generation;
    const camera = this.camera;
    if (!camera.has_live) {
      this.setState("no_stream");
      return;
    }
    this.setState("connecting");
    const pc = new RTCPeerConnection({ iceServers: [] });
    this.pc = pc;
    const transceiver = pc.addTransceiver("video", { direction: "recvonly" });
    preferH264(transceiver);
    pc.ontrack = (event) => {
      this.video.srcObject = event.streams[0] || new MediaStream([event.track]);
      this.video.play().catch(() => {});
    };
    pc.onconnectionstatechange = () => {
      if (generation !== this.generation) return;
      if (pc.connectionState === "connected") this.setState("playing");
      if (pc.connectionState === "failed" || pc.connectionState === "closed") this.retry();
    };
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await waitIceGathering(pc);
      if (generation !== this.generation) return;
      const { location, answer } = await whepStart(camera.id, pc.localDescription.sdp);
      if (generation !== this.generation) {
        whepStop(location);
        return;
      }
      this.location = location;
      await pc.setRemoteDescription({ type: "answer", sdp: answer });
      this.lastProgress = performance.now();
    } catch (error) {
      if (generation !== this.generation) return;
      console.warn(`camera ${camera.id}: ${error.message}`);
      this.why(error.message);
      // final answers: retrying the same offer cannot help (400 and 413: this browser's offer is refused)
      if ([400, 403, 404, 409, 413].includes(error.status)) {
        this.stop();
        this.setState(error.status === 409 ? "no_stream" : "failed");
        return;
      }
      this.retry();
    }
  }

  retry() {
    if (!this.camera || this.retryTimer) return;
    this.stop();
    this.setState("reconnecting");
    const wait = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = 0;
      if (this.camera) this.start();
    }, wait);
  }

  stop() {
    this.generation++;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = 0;
    whepStop(this.location); // first: the server ends the session before it sees the peer go
    this.location = null;
    if (this.pc) this.pc.close();
    this.pc = null;
    this.video.srcObject = null;
    this.boxes = null; // no boxes over a tile that shows no picture (reconnecting, emptied)
    this.clearOverlay();
  }

  // Called every second by the wall: notices a picture that stopped moving.
  watchdog(now) {
    if (!this.camera || !this.pc || this.state !== "playing") return;
    const frames = this.video.getVideoPlaybackQuality().totalVideoFrames;
    if (frames !== this.lastFrames) {
      this.lastFrames = frames;
      this.lastProgress = now;
      this.retryMs = RETRY_MIN_MS;
    } else if (now - this.lastProgress > STALL_MS) {
      console.warn(`camera ${this.camera.id}: no new frame for ${STALL_MS} ms, reconnecting`);
      this.retry();
    }
  }

  showDetections(data) {
    this.boxes = data;
    this.boxesAt = performance.now();
    this.drawOverlay();
  }

  clearOverlay() {
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
  }

  // Where the <video> shows its picture in a w x h tile (CSS object-fit: contain, centred), from the
  // live stream's own size; null while it has no picture (connecting, reconnecting).
  pictureRect(w, h) {
    const vw = this.video.videoWidth;
    const vh = this.video.videoHeight;
    if (!(vw > 0 && vh > 0)) return null;
    const scale = Math.min(w / vw, h / vh);
    return { x: (w - vw * scale) / 2, y: (h - vh * scale) / 2, width: vw * scale, height: vh * scale };
  }

  // Boxes are in pixels of the analysed frame (data.width x data.height), often another stream of
  // the same view than the one the wall plays (4:3 main analysed, 16:9 sub shown): each box is laid
  // on the displayed picture at the same fractions of the frame, clipped to that picture. The canvas
  // holds devicePixelRatio device pixels per CSS pixel (sharp on HiDPI screens); the drawing is in CSS
  // pixels. Boxes older than BOX_TTL_MS are cleared once and dropped, which ends the wall's redraws.
  drawOverlay() {
    const canvas = this.canvas;
    // the canvas's own CSS box (it covers the tile like the video), fractional in a 16-tile grid or at
    // browser zoom: whole-pixel clientWidth would make the backing store miss the screen's pixels
    const { width: w, height: h } = canvas.getBoundingClientRect();
    const ratio = window.devicePixelRatio || 1;
    const backingWidth = Math.round(w * ratio);
    const backingHeight = Math.round(h * ratio);
    if (canvas.width !== backingWidth || canvas.height !== backingHeight) {
      canvas.width = backingWidth;
      canvas.height = backingHeight;
    }
    this.clearOverlay();
    const data = this.boxes;
    if (!data || performance.now() - this.boxesAt > BOX_TTL_MS || !data.width || !data.height) {
      this.boxes = null;
      return;
    }
    const picture = w && h ? this.pictureRect(w, h) : null;
    if (!picture) return; // no picture to lay boxes on: none float over a black tile
    const ctx = canvas.getContext("2d");
    ctx.setTransform(backingWidth / w, 0, 0, backingHeight / h, 0, 0);
    ctx.save();
    ctx.beginPath();
    ctx.rect(picture.x, picture.y, picture.width, picture.height);
    ctx.clip();
    const sx = picture.width / data.width;
    const sy = picture.height / data.height;
    ctx.lineWidth = LINE_WIDTH;
    ctx.font = "12px 'Noto Sans CJK SC', sans-serif";
    for (const box of data.boxes || []) {
      const x = picture.x + box.x1 * sx;
      const y = picture.y + box.y1 * sy;
      ctx.strokeStyle = "#39ff6a";
      ctx.strokeRect(x, y, (box.x2 - box.x1) * sx, (box.y2 - box.y1) * sy);
      this.drawLabel(ctx, box, picture, x, y);
    }
    ctx.restore();
  }

  // The box's label on a dark band just outside its top edge, or just inside when the picture has no
  // room above: never over the stroke.
  drawLabel(ctx, box, picture, x, y) {
    const half = LINE_WIDTH / 2;
    const text = `${box.label} ${Math.round((box.score || 0) * 100)}%`;
    const width = ctx.measureText(text).width + 6;
    const above = y - half - LABEL_HEIGHT >= picture.y;
    const top = above ? y - half - LABEL_HEIGHT : Math.max(y, picture.y) + half;
    // kept inside the picture on both sides: a person walking in at the right edge keeps a readable label
    const left = Math.max(picture.x, Math.min(above ? x - half : x + half, picture.x + picture.width - width));
    ctx.fillStyle = "rgba(0, 0, 0, 0.6)";
    ctx.fillRect(left, top, width, LABEL_HEIGHT);
    ctx.fillStyle = "#39ff6a";
    ctx.fillText(text, left + 3, top + LABEL_HEIGHT - 4);
  }
}
