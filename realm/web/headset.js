// A simulated headset: a deterministic motion model of a few personas,
// streamed to the realm as binary XR frames (clients/PROTOCOL.md) over a
// WebRTC data channel or the realm WebSocket. Plain ES module, no build
// step; it needs the console's signed-in session cookie.

const $ = (id) => document.getElementById(id);
const HZ = 72;
const MAX_FRAMES_PER_MESSAGE = 32;
const FRAME_SIZE = 8 + 4 + 4 + 3 * 7 * 4;

// --- deterministic motion model ---

// mulberry32: a tiny seeded generator, so a persona moves the same way on
// every run.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// A persona is a body and a way of moving: height, shoulder width, how the
// head sways and turns, how the hands wander, and a physiological tremor.
function persona(seed) {
  const r = rng(seed * 7919);
  const between = (lo, hi) => lo + (hi - lo) * r();
  return {
    seed,
    height: between(1.55, 1.92),
    shoulders: between(0.32, 0.46),
    swayHz: between(0.12, 0.45), swayAmp: between(0.008, 0.04),
    yawHz: between(0.05, 0.3), yawAmp: between(0.2, 0.9),
    pitchHz: between(0.1, 0.5), pitchAmp: between(0.05, 0.25),
    handHz: between(0.2, 1.4), handAmp: between(0.04, 0.22),
    handLift: between(-0.25, 0.1),
    tremorHz: between(8, 12), tremorAmp: between(0.0004, 0.002),
    wander: between(0.2, 1.0),
    // How the hands are held: how far forward and low, tilted how, and
    // how much more the dominant hand moves.
    reach: between(0.2, 0.55), drop: between(0.3, 0.7),
    handPitch: between(-0.9, 0.2), handRoll: between(-0.6, 0.6),
    headPitch: between(-0.35, 0.15), dominance: between(0.3, 1),
    rightHanded: r() < 0.8,
    noise: rng(seed * 104729),
  };
}

// Smoothed noise: a random walk pulled back to zero, different per persona
// and never periodic, as real motion is not.
function walker(p) {
  let v = 0;
  return (dt) => {
    v += (p.noise() - 0.5) * p.wander * Math.sqrt(dt) - v * dt * 0.5;
    return v;
  };
}

function quatYawPitch(yaw, pitch) {
  const sy = Math.sin(yaw / 2), cy = Math.cos(yaw / 2), sx = Math.sin(pitch / 2), cx = Math.cos(pitch / 2);
  return [cy * sx, cx * sy, -sy * sx, cy * cx];
}

class Body {
  constructor(p) {
    this.p = p;
    this.walk = [walker(p), walker(p), walker(p), walker(p)];
    this.w = [0, 0, 0, 0];
  }

  // pose of head and hands at t seconds of device time, dt after the last.
  at(t, dt) {
    const p = this.p;
    for (let i = 0; i < 4; i++) this.w[i] = this.walk[i](dt);
    const TAU = 2 * Math.PI;
    const yaw = p.yawAmp * Math.sin(TAU * p.yawHz * t) + 0.3 * this.w[0];
    const pitch = p.headPitch + p.pitchAmp * Math.sin(TAU * p.pitchHz * t + 1) + 0.1 * this.w[1];
    const eye = p.height - 0.11;
    const head = [p.swayAmp * Math.sin(TAU * p.swayHz * t), eye + 0.01 * Math.sin(TAU * p.swayHz * 2 * t), p.swayAmp * 0.5 * Math.cos(TAU * p.swayHz * t)];
    const hand = (side, phase) => {
      const dominant = (side > 0) === p.rightHanded;
      const amp = p.handAmp * (dominant ? 1 : p.dominance);
      const tremor = p.tremorAmp * Math.sin(TAU * p.tremorHz * t + phase);
      return [
        side * p.shoulders / 2 + amp * Math.sin(TAU * p.handHz * t + phase) + 0.05 * this.w[2] + tremor,
        eye - p.drop + p.handLift + amp * 0.6 * Math.cos(TAU * p.handHz * 1.3 * t + phase) + tremor,
        -p.reach - amp * 0.5 * Math.sin(TAU * p.handHz * 0.7 * t + phase) + 0.05 * this.w[3] + tremor,
      ];
    };
    const grip = (side) => {
      const q = quatYawPitch(yaw * 0.5 + side * p.handRoll * 0.5, p.handPitch);
      return q;
    };
    return {
      head: { pos: head, rot: quatYawPitch(yaw, pitch) },
      left: { pos: hand(-1, 0), rot: grip(-1) },
      right: { pos: hand(1, 2.1), rot: grip(1) },
    };
  }
}

// --- wire format ---

function encode(frames) {
  const buf = new ArrayBuffer(4 + frames.length * FRAME_SIZE);
  const v = new DataView(buf);
  v.setUint8(0, 1); // format version
  v.setUint8(1, frames.length);
  let o = 4;
  for (const f of frames) {
    v.setBigUint64(o, BigInt(f.timeUS), true); o += 8;
    v.setUint32(o, f.seq >>> 0, true); o += 4;
    v.setUint32(o, 0b111, true); o += 4; // head, left and right tracked
    for (const pose of [f.head, f.left, f.right]) {
      for (const x of pose.pos) { v.setFloat32(o, x, true); o += 4; }
      for (const x of pose.rot) { v.setFloat32(o, x, true); o += 4; }
    }
  }
  return buf;
}

// --- page state ---

const state = { ws: null, pc: null, dc: null, timer: 0, body: null, seq: 0, deviceUS: 0, last: 0, sent: 0, points: [] };

function show(label, value) {
  $("status").textContent = label + (value === undefined ? "" : "\n" + JSON.stringify(value, null, 2));
}

function setLink(text) {
  $("link").textContent = text;
  document.body.dataset.link = text;
}

function showTrust(t) {
  if (!t) return;
  $("trust-state").textContent = t.state;
  $("trust-score").textContent = `score ${Number(t.score).toFixed(2)}`;
  document.body.dataset.trust = t.state;
}

function wear(seed) {
  state.body = new Body(persona(seed));
  const sel = $("persona");
  sel.value = String(seed);
  $("wearer").textContent = sel.options[sel.selectedIndex].text;
  document.body.dataset.wearer = String(seed);
}

function liveURL() {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/realm`;
}

function onMessage(ev) {
  const m = JSON.parse(ev.data);
  switch (m.type) {
    case "hello":
    case "trust":
      showTrust(m.trust);
      if (m.type === "trust") addPoint({ score: m.trust.score });
      break;
    case "xr.score":
      showTrust({ state: m.xr.state, score: m.xr.score });
      addPoint({ probability: m.xr.probability, score: m.xr.score });
      document.body.dataset.scores = String(Number(document.body.dataset.scores || 0) + 1);
      document.body.dataset.probability = String(m.xr.probability);
      break;
    case "xr.status":
      $("accepted").textContent = m.xr.frames_accepted;
      $("enrollment").textContent = m.xr.enrollment;
      document.body.dataset.accepted = String(m.xr.frames_accepted);
      document.body.dataset.enrollment = m.xr.enrollment;
      break;
    case "webrtc.answer":
      state.pc.setRemoteDescription({ type: "answer", sdp: m.sdp }).catch((e) => show("answer refused: " + e));
      break;
    case "error":
      show("the realm says: " + m.error);
      break;
  }
}

async function openWebRTC() {
  const pc = new RTCPeerConnection();
  const dc = pc.createDataChannel("xr", { ordered: false, maxRetransmits: 0 });
  dc.binaryType = "arraybuffer";
  state.pc = pc;
  state.dc = dc;
  pc.onicecandidate = (e) => {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) {
      state.ws.send(JSON.stringify({ type: "webrtc.candidate", candidate: e.candidate ? e.candidate.toJSON() : null }));
    }
  };
  const opened = new Promise((resolve, reject) => {
    dc.onopen = resolve;
    pc.onconnectionstatechange = () => { if (pc.connectionState === "failed") reject(new Error("WebRTC connection failed")); };
  });
  await pc.setLocalDescription(await pc.createOffer());
  state.ws.send(JSON.stringify({ type: "webrtc.offer", sdp: pc.localDescription.sdp }));
  await opened;
}

async function start(transport) {
  stop();
  const ws = new WebSocket(liveURL());
  ws.binaryType = "arraybuffer";
  state.ws = ws;
  ws.onmessage = onMessage;
  ws.onclose = (e) => { setLink(`closed (${e.code} ${e.reason})`); stopTimer(); };
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error("WebSocket refused")); });
  if (transport === "webrtc") {
    setLink("negotiating");
    await openWebRTC();
  }
  setLink(transport === "webrtc" ? "data channel open" : "websocket open");
  state.last = performance.now();
  state.deviceUS = Math.round(state.last * 1000);
  state.timer = setInterval(tick, 40);
  $("handover").disabled = false;
  $("stop").disabled = false;
}

// tick sends every frame due since the last one, at HZ, stamped with the
// device clock.
function tick() {
  const now = performance.now();
  const due = Math.floor((now - state.last) * HZ / 1000);
  if (due <= 0) return;
  const frames = [];
  for (let i = 0; i < due; i++) {
    state.last += 1000 / HZ;
    state.deviceUS += Math.round(1e6 / HZ);
    const pose = state.body.at(state.deviceUS / 1e6, 1 / HZ);
    frames.push({ timeUS: state.deviceUS, seq: state.seq++, ...pose });
  }
  for (let i = 0; i < frames.length; i += MAX_FRAMES_PER_MESSAGE) {
    const msg = encode(frames.slice(i, i + MAX_FRAMES_PER_MESSAGE));
    if (state.dc) {
      if (state.dc.readyState !== "open" || state.dc.bufferedAmount > 256 * 1024) continue;
      state.dc.send(msg);
    } else if (state.ws && state.ws.readyState === WebSocket.OPEN) {
      state.ws.send(msg);
    } else {
      continue;
    }
    state.sent += Math.min(MAX_FRAMES_PER_MESSAGE, frames.length - i);
  }
  $("sent").textContent = state.sent;
  document.body.dataset.sent = String(state.sent);
}

function stopTimer() {
  clearInterval(state.timer);
  state.timer = 0;
}

function stop() {
  stopTimer();
  if (state.pc) state.pc.close();
  if (state.ws) state.ws.close(1000, "headset off");
  state.pc = state.dc = state.ws = null;
  $("handover").disabled = true;
  $("stop").disabled = true;
}

// --- chart ---

function addPoint(p) {
  state.points.push({ at: performance.now(), ...p });
  if (state.points.length > 600) state.points.shift();
  draw();
}

function draw() {
  const c = $("chart");
  const g = c.getContext("2d");
  const w = c.width, h = c.height, span = 120000, now = performance.now();
  g.clearRect(0, 0, w, h);
  g.strokeStyle = "#888";
  g.setLineDash([4, 4]);
  g.beginPath(); g.moveTo(0, h * (1 - 0.6)); g.lineTo(w, h * (1 - 0.6)); g.stroke();
  g.setLineDash([]);
  for (const [key, color] of [["probability", "#1f6feb"], ["score", "#d97706"]]) {
    g.strokeStyle = color;
    g.beginPath();
    let first = true;
    for (const p of state.points) {
      if (p[key] === undefined) continue;
      const x = w - (now - p.at) / span * w, y = h * (1 - p[key]);
      if (first) g.moveTo(x, y); else g.lineTo(x, y);
      first = false;
    }
    g.stroke();
  }
}

// --- controls ---

$("controls").addEventListener("submit", async (e) => {
  e.preventDefault();
  wear(Number($("persona").value));
  try {
    await start($("transport").value);
    document.body.dataset.last = "start:ok";
  } catch (err) {
    show("could not start: " + err);
    document.body.dataset.last = "start:error";
  }
});

$("handover").addEventListener("click", () => {
  const next = (Number($("persona").value) % 4) + 1;
  wear(next); // same headset, same clock and sequence: only the wearer changes
  document.body.dataset.last = "handover:ok";
});

$("stop").addEventListener("click", () => { stop(); setLink("closed"); });

async function init() {
  const res = await fetch("/v1/avatars/me", { credentials: "same-origin", headers: { Accept: "application/json" } });
  const signedIn = res.ok;
  $("signed-in").hidden = !signedIn;
  $("signed-out").hidden = signedIn;
  document.body.dataset.state = signedIn ? "signed-in" : "signed-out";
  if (signedIn) {
    const me = await res.json();
    showTrust(me.trust);
  }
  wear(Number($("persona").value));
  document.body.dataset.ready = "1";
}

await init();
