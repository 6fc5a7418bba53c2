// The console's charts, drawn by hand on a 2D canvas (no chart library):
// the trust history of this page (trust score and biometric match
// probability over time, with the thresholds), and two small general
// charts the views share: BucketChart (counts per time bucket, stacked,
// one direction per kind: decisions allowed above the axis and denied
// below, transfers and mints) and LineChart (values over time within an
// envelope: a twin's telemetry). Each one also says in text what it
// shows (its canvas's aria-label), for those who do not see it.

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
    watchSize(this);
    charts.add(this);
    clearInterval(this.timer);
    this.timer = setInterval(() => {
      if (this.canvas.offsetParent !== null && !document.hidden) this.draw();
    }, 500);
    this.draw();
  }

  draw() {
    const { g, w: cssW, h: cssH, ink } = fit(this.canvas);
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

    // Background bands: the state the session was in.
    let prev = null;
    for (const p of history) {
      if (!p.state) continue;
      if (prev) this.band(g, x(Math.max(prev.at, from)), x(p.at), padT, h, STATE_COLORS[prev.state]);
      prev = p;
    }
    if (prev) this.band(g, x(Math.max(prev.at, from)), x(now), padT, h, STATE_COLORS[prev.state]);

    // Axes and thresholds.
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

// --- shared by the charts below ---

// fit sizes the canvas's backing store to its CSS box and the screen's
// pixel ratio, and returns the context and the box.
function fit(c) {
  const cssW = c.clientWidth || c.width, cssH = c.clientHeight || c.height;
  const ratio = window.devicePixelRatio || 1;
  if (c.width !== Math.round(cssW * ratio) || c.height !== Math.round(cssH * ratio)) {
    c.width = Math.round(cssW * ratio);
    c.height = Math.round(cssH * ratio);
  }
  const g = c.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, cssW, cssH);
  g.font = "11px system-ui, sans-serif";
  return { g, w: cssW, h: cssH, ink: getComputedStyle(c).color || "#333" };
}

// A chart redraws when its canvas changes size (a phone turned, a window
// resized), or its lines would be stretched.
const sizes = typeof ResizeObserver === "function"
  ? new ResizeObserver((entries) => { for (const e of entries) e.target.chart?.draw(); })
  : null;
function watchSize(chart) {
  chart.canvas.chart = chart;
  sizes?.observe(chart.canvas);
}

// timeLabel is a tick's text: the time of day, with seconds for spans
// under ten minutes.
function timeLabel(at, span) {
  const d = new Date(at);
  return span < 600000 ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })
    : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function timeAxis(g, x, from, to, bottom, left, right) {
  const span = to - from;
  // As many ticks as their labels fit side by side, with room between;
  // a label that would touch the one before it is left out.
  const widest = g.measureText(timeLabel(to, span)).width;
  const ticks = Math.max(1, Math.min(5, Math.floor((right - left) / (widest * 1.6))));
  g.globalAlpha = 0.8;
  let end = -Infinity;
  for (let i = 0; i <= ticks; i++) {
    const at = from + (span * i) / ticks;
    const text = timeLabel(at, span);
    const tw = g.measureText(text).width;
    const at0 = Math.min(Math.max(x(at) - tw / 2, left), right - tw);
    if (at0 < end + 8) continue;
    g.fillText(text, at0, bottom);
    end = at0 + tw;
  }
  g.globalAlpha = 1;
}

// bucketsOf counts events into n buckets of time from..to, by a key and a
// sign: series(e) answers {key, sign} (sign +1 above the axis, -1 below)
// or null to leave the event out.
export function bucketsOf(events, from, to, n, series) {
  const step = (to - from) / n;
  const out = new Map(); // "key|sign" -> counts
  for (const e of events) {
    const at = typeof e.at === "number" ? e.at : Date.parse(e.time);
    if (!(at >= from && at <= to)) continue;
    const s = series(e);
    if (!s) continue;
    const id = s.key + "|" + s.sign;
    if (!out.has(id)) out.set(id, { key: s.key, sign: s.sign, counts: new Array(n).fill(0) });
    out.get(id).counts[Math.min(n - 1, Math.floor((at - from) / step))]++;
  }
  return [...out.values()];
}

// PALETTE colors series by key, the same key always the same color; the
// hues stay apart and readable on light and dark panels.
const PALETTE = ["#2f6fdf", "#e07b00", "#15a35a", "#c03fbf", "#0e9bb0", "#b8860b", "#7a5cff", "#d9465f", "#5f8f00", "#8a6d5a", "#ff6f91", "#00838f", "#283593", "#ad1457", "#9e9d24", "#5d4037"];
const colorOf = new Map();
export function seriesColor(key) {
  if (!colorOf.has(key)) colorOf.set(key, PALETTE[colorOf.size % PALETTE.length]);
  return colorOf.get(key);
}

// BucketChart draws counts per bucket of time as stacked bars: series
// with sign +1 above the axis, -1 below it (allowed above, denied below).
export class BucketChart {
  constructor(canvas, { above = "", below = "" } = {}) {
    this.canvas = canvas;
    this.labels = { above, below };
    this.data = null;
    watchSize(this);
  }

  // set shows {from, to, n, series: [{key, sign, counts}]}.
  set(data) {
    this.data = data;
    const total = (sign) => data.series.filter((s) => s.sign === sign).reduce((n, s) => n + s.counts.reduce((a, b) => a + b, 0), 0);
    const up = total(1), down = total(-1);
    this.canvas.dataset.above = String(up);
    this.canvas.dataset.below = String(down);
    this.canvas.setAttribute("aria-label", `${this.canvas.dataset.title || "Chart"}: ${up} ${this.labels.above || "above"}` +
      (this.labels.below ? `, ${down} ${this.labels.below}` : "") + ` between ${timeLabel(data.from, data.to - data.from)} and ${timeLabel(data.to, data.to - data.from)}.`);
    this.draw();
  }

  draw() {
    const d = this.data;
    if (!d || this.canvas.offsetParent === null) return;
    const { g, w, h, ink } = fit(this.canvas);
    const padL = 34, padR = 8, padT = 8, padB = 20;
    const hasBelow = d.series.some((s) => s.sign < 0 && s.counts.some((c) => c > 0));
    const sums = (sign) => Array.from({ length: d.n }, (_, i) => d.series.filter((s) => s.sign === sign).reduce((a, s) => a + s.counts[i], 0));
    const up = sums(1), down = sums(-1);
    const max = Math.max(1, ...up, ...down);
    const plotH = h - padT - padB;
    const axis = padT + (hasBelow ? plotH * (Math.max(...up, 1) / (Math.max(...up, 1) + Math.max(...down, hasBelow ? 1 : 0))) : plotH);
    const scale = hasBelow ? plotH / (Math.max(...up, 1) + Math.max(...down, 1)) : plotH / max;
    const bw = (w - padL - padR) / d.n;
    const x = (at) => padL + ((at - d.from) / (d.to - d.from)) * (w - padL - padR);
    g.fillStyle = ink;
    g.strokeStyle = ink;
    // The axis and the largest count on each side.
    g.globalAlpha = 0.5;
    g.beginPath(); g.moveTo(padL, axis); g.lineTo(w - padR, axis); g.stroke();
    g.globalAlpha = 0.8;
    const topCount = Math.max(...up, 0), bottomCount = Math.max(...down, 0);
    g.fillText(String(topCount), 4, padT + 9);
    if (hasBelow) g.fillText(String(bottomCount), 4, h - padB);
    // The axis's 0, unless it would sit on a count's label.
    if (axis - padT > 16 && (!hasBelow || h - padB - axis > 16)) g.fillText("0", 4, axis + 4);
    g.globalAlpha = 1;
    for (let i = 0; i < d.n; i++) {
      let above = axis, below = axis;
      for (const s of d.series) {
        const v = s.counts[i];
        if (!v) continue;
        const bh = v * scale;
        g.fillStyle = seriesColor(s.key);
        // Denied counts are drawn paler and below: color is never the only
        // sign of the effect.
        g.globalAlpha = s.sign < 0 ? 0.55 : 1;
        if (s.sign > 0) { above -= bh; g.fillRect(padL + i * bw + 1, above, Math.max(1, bw - 2), bh); }
        else { g.fillRect(padL + i * bw + 1, below, Math.max(1, bw - 2), bh); below += bh; }
        g.globalAlpha = 1;
      }
    }
    g.fillStyle = ink;
    timeAxis(g, x, d.from, d.to, h - 4, padL, w - padR);
  }
}

// LineChart draws values over time: series of {at, value} as lines (a
// step line holds each value until the next), inside an envelope
// {min, max} shaded as the allowed range (or what envelope.words says it
// is).
export class LineChart {
  constructor(canvas) {
    this.canvas = canvas;
    this.data = null;
    watchSize(this);
  }

  // set shows {from, to, envelope: {min, max, unit, words}, range: {lo,
  // hi} (optional), series: [{key,
  // color, dashed, points: [{at, value}]}]}.
  set(data) {
    this.data = data;
    const main = data.series[0];
    const lastPoint = main && main.points.length ? main.points[main.points.length - 1] : null;
    this.canvas.dataset.points = String(main ? main.points.length : 0);
    this.canvas.setAttribute("aria-label", `${this.canvas.dataset.title || "Chart"}: ` + (lastPoint
      ? `${main.points.length} readings, the last ${lastPoint.value} ${data.envelope.unit || ""}, ${data.envelope.words || `allowed ${data.envelope.min} to ${data.envelope.max}`}.`
      : "no readings yet."));
    this.draw();
  }

  draw() {
    const d = this.data;
    if (!d || this.canvas.offsetParent === null) return;
    const { g, w, h, ink } = fit(this.canvas);
    const padL = 40, padR = 8, padT = 8, padB = 20;
    const { min, max } = d.envelope;
    // The axis spans the envelope and a margin, or the range asked for
    // (a score's whole 0 to 1, of which the envelope is a part).
    const margin = (max - min || 1) * 0.12;
    const lo = d.range ? d.range.lo : min - margin, hi = d.range ? d.range.hi : max + margin;
    const x = (at) => padL + ((at - d.from) / (d.to - d.from)) * (w - padL - padR);
    const y = (v) => padT + (1 - (Math.min(Math.max(v, lo), hi) - lo) / (hi - lo)) * (h - padT - padB);
    // The envelope: the range every command must stay in.
    g.fillStyle = "rgba(47,111,223,0.08)";
    g.fillRect(padL, y(max), w - padL - padR, y(min) - y(max));
    g.strokeStyle = ink;
    g.fillStyle = ink;
    g.globalAlpha = 0.6;
    g.setLineDash([5, 4]);
    for (const v of [min, max]) { g.beginPath(); g.moveTo(padL, y(v)); g.lineTo(w - padR, y(v)); g.stroke(); }
    g.setLineDash([]);
    g.globalAlpha = 0.85;
    for (const v of [min, max]) g.fillText(String(Number(v.toFixed(3))), 4, y(v) + 4);
    g.globalAlpha = 1;
    for (const s of d.series) {
      const pts = s.points.filter((p) => p.at >= d.from - 60000);
      if (!pts.length) continue;
      g.strokeStyle = s.color;
      g.fillStyle = s.color;
      g.lineWidth = s.dashed ? 1.5 : 2;
      g.setLineDash(s.dashed ? [6, 4] : []);
      g.beginPath();
      pts.forEach((p, i) => {
        if (i === 0) g.moveTo(x(Math.max(p.at, d.from)), y(p.value));
        else { g.lineTo(x(p.at), y(pts[i - 1].value)); g.lineTo(x(p.at), y(p.value)); }
      });
      g.lineTo(x(d.to), y(pts[pts.length - 1].value));
      g.stroke();
      g.setLineDash([]);
      if (!s.dashed) for (const p of pts) if (p.at >= d.from) { g.beginPath(); g.arc(x(p.at), y(p.value), 2.5, 0, 2 * Math.PI); g.fill(); }
    }
    g.lineWidth = 1;
    g.fillStyle = ink;
    timeAxis(g, x, d.from, d.to, h - 4, padL, w - padR);
  }
}
