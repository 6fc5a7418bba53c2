// The trust history of this page and a canvas chart of it: trust score
// and biometric match probability over time, with the thresholds. Drawn by
// hand on a 2D canvas; no chart library.

import { onTrust, live } from "./api.js";

const MAX_POINTS = 3000;

// history holds every reading since the page loaded: {at, score, state}
// from trust readings and {at, probability} from scored motion windows.
export const history = [];

const charts = new Set();
let drawScheduled = false;

function add(p) {
  history.push({ at: Date.now(), ...p });
  if (history.length > MAX_POINTS) history.splice(0, history.length - MAX_POINTS);
  // A new reading shows at once, not at the next periodic redraw.
  if (!drawScheduled && charts.size) {
    drawScheduled = true;
    requestAnimationFrame(() => {
      drawScheduled = false;
      for (const c of charts) if (c.canvas.offsetParent !== null) c.draw();
    });
  }
}

onTrust((t) => add({ score: Number(t.score), state: t.state }));
live.on("xr.score", (m) => add({ probability: Number(m.xr.probability) }));

const COLORS = { probability: "#2f6fdf", score: "#e07b00" };
const STATE_COLORS = { trusted: "rgba(22,163,74,0.10)", "step-up": "rgba(234,179,8,0.16)", suspended: "rgba(220,38,38,0.14)" };

export class TrustChart {
  constructor(canvas, { spanMS = 180000 } = {}) {
    this.canvas = canvas;
    this.spanMS = spanMS;
    this.timer = 0;
  }

  // start redraws about twice a second while the chart is on screen.
  start() {
    charts.add(this);
    clearInterval(this.timer);
    this.timer = setInterval(() => {
      if (this.canvas.offsetParent !== null && !document.hidden) this.draw();
    }, 500);
    this.draw();
  }

  draw() {
    const c = this.canvas;
    const cssW = c.clientWidth || c.width, cssH = c.clientHeight || c.height;
    const ratio = window.devicePixelRatio || 1;
    if (c.width !== Math.round(cssW * ratio) || c.height !== Math.round(cssH * ratio)) {
      c.width = Math.round(cssW * ratio);
      c.height = Math.round(cssH * ratio);
    }
    const g = c.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    const padL = 34, padR = 8, padT = 8, padB = 20;
    const w = cssW - padL - padR, h = cssH - padT - padB;
    // The window grows with the history, up to spanMS, so a fresh
    // session's first minute fills the chart.
    const now = Date.now();
    const first = history.length ? history[0].at : now;
    const span = Math.min(this.spanMS, Math.max(30000, Math.ceil((now - first) / 10000) * 10000));
    const from = now - span;
    const x = (at) => padL + (at - from) / span * w;
    const y = (v) => padT + (1 - Math.min(Math.max(v, 0), 1)) * h;
    const ink = getComputedStyle(c).color || "#333";
    g.clearRect(0, 0, cssW, cssH);

    // Background bands: the state the session was in.
    let prev = null;
    for (const p of history) {
      if (!p.state) continue;
      if (prev) this.band(g, x(Math.max(prev.at, from)), x(p.at), padT, h, STATE_COLORS[prev.state]);
      prev = p;
    }
    if (prev) this.band(g, x(Math.max(prev.at, from)), x(now), padT, h, STATE_COLORS[prev.state]);

    // Axes and thresholds.
    g.font = "11px system-ui, sans-serif";
    g.fillStyle = ink;
    g.strokeStyle = ink;
    g.globalAlpha = 0.35;
    g.lineWidth = 1;
    for (const v of [0, 0.25, 0.5, 0.75, 1]) {
      g.beginPath(); g.moveTo(padL, y(v)); g.lineTo(padL + w, y(v)); g.stroke();
    }
    g.globalAlpha = 0.8;
    for (const v of [0, 0.5, 1]) g.fillText(v.toFixed(1), 4, y(v) + 4);
    const secs = span / 1000;
    for (let s = 0; s <= secs; s += secs / 4) g.fillText(s === 0 ? "now" : `-${Math.round(s)}s`, x(now - s * 1000) - (s === 0 ? 22 : 12), cssH - 5);
    g.globalAlpha = 0.7;
    g.setLineDash([5, 4]);
    for (const v of [0.6, 0.5]) { g.beginPath(); g.moveTo(padL, y(v)); g.lineTo(padL + w, y(v)); g.stroke(); }
    g.setLineDash([]);
    g.globalAlpha = 1;

    // The series: the score as a step line (it holds until the next
    // reading), each scored window's match probability as a dot on a thin
    // line, so both show where the score is capped at the probability.
    const visible = history.filter((p) => p.at >= from - 5000);
    g.strokeStyle = COLORS.probability;
    g.fillStyle = COLORS.probability;
    g.lineWidth = 1;
    g.beginPath();
    let started = false;
    for (const p of visible) {
      if (p.probability === undefined) continue;
      if (started) g.lineTo(x(p.at), y(p.probability)); else g.moveTo(x(p.at), y(p.probability));
      started = true;
    }
    g.stroke();
    for (const p of visible) {
      if (p.probability === undefined) continue;
      g.beginPath(); g.arc(x(p.at), y(p.probability), 3, 0, 2 * Math.PI); g.fill();
    }
    g.strokeStyle = COLORS.score;
    g.lineWidth = 2;
    g.beginPath();
    let last = null;
    for (const p of visible) {
      if (p.score === undefined) continue;
      if (last === null) g.moveTo(x(p.at), y(p.score));
      else { g.lineTo(x(p.at), y(last)); g.lineTo(x(p.at), y(p.score)); }
      last = p.score;
    }
    if (last !== null) g.lineTo(x(now), y(last));
    g.stroke();
  }

  band(g, x0, x1, top, h, color) {
    if (!color || x1 <= x0) return;
    g.fillStyle = color;
    g.fillRect(x0, top, x1 - x0, h);
  }
}
