// The console's headset: it streams head and hand poses to the realm as
// binary XR frames (clients/PROTOCOL.md) over a WebRTC data channel or the
// realm WebSocket, and keeps streaming while the person uses other views.
// With WebXR (navigator.xr with immersive-vr) the poses are the real
// headset's; otherwise a simulated person wears it (motion.js).

import { live } from "./api.js";
import { PERSONAS, Wearer, encodeFrames, MAX_FRAMES_PER_MESSAGE } from "./motion.js";

const HZ = 72;
const TICK_MS = 40;
const MAX_BUFFERED = 256 * 1024;

const listeners = new Set();

export const headset = {
  mode: "off", // off | simulated | webxr
  transport: "webrtc",
  link: "closed",
  persona: PERSONAS[0].id,
  wearer: null,
  sessionCount: 0,
  sent: 0,
  accepted: 0,
  rejected: {},
  enrollment: "unknown",
  // enrollmentProgress is the share of the template's motion collected,
  // while enrolling; it goes on where it stopped after a reconnect.
  enrollmentProgress: null,
  origin: [3, 4], // where in the scene the play area is: the foundry lobby
  seq: 0,
  deviceUS: 0,
  lastTick: 0,
  timer: 0,
  pc: null,
  dc: null,
  xr: null,
  unsubscribe: [],
  lastError: "",
  lastHead: null, // the newest head position sent, for the scene map

  subscribe(cb) {
    listeners.add(cb);
    cb(this);
    return () => listeners.delete(cb);
  },

  changed() {
    for (const cb of listeners) {
      try {
        cb(this);
      } catch (err) {
        console.error("headset listener", err);
      }
    }
  },

  setLink(text) {
    this.link = text;
    document.body.dataset.link = text;
    this.changed();
  },

  // xrSupported reports whether the browser can run an immersive VR
  // session (a real headset); false on desktops and in tests.
  async xrSupported() {
    try {
      return !!navigator.xr && (await navigator.xr.isSessionSupported("immersive-vr"));
    } catch {
      return false;
    }
  },

  // putOn starts streaming a simulated persona.
  async putOn(personaID, transport) {
    this.takeOff();
    this.transport = transport;
    this.wear(personaID);
    await this.openTransport();
    this.mode = "simulated";
    this.lastTick = performance.now();
    this.deviceUS = Math.round(this.lastTick * 1000);
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.changed();
  },

  // wear puts the headset on persona id: same headset, same clock and
  // frame counter, only the person changes.
  wear(personaID) {
    const spec = PERSONAS.find((p) => p.id === personaID) || PERSONAS[0];
    this.persona = spec.id;
    this.sessionCount++;
    this.wearer = new Wearer(spec, this.sessionCount, this.origin);
    document.body.dataset.wearer = String(spec.id);
    this.changed();
  },

  // handOver gives the headset to the next persona.
  handOver() {
    const i = PERSONAS.findIndex((p) => p.id === this.persona);
    this.wear(PERSONAS[(i + 1) % PERSONAS.length].id);
  },

  takeOff() {
    clearInterval(this.timer);
    this.timer = 0;
    if (this.xr) {
      const s = this.xr.session;
      this.xr = null;
      s.end().catch(() => {});
    }
    this.closePeer();
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    this.mode = "off";
    this.setLink("closed");
  },

  closePeer() {
    if (this.pc) this.pc.close();
    this.pc = this.dc = null;
  },

  // openTransport opens the live WebSocket and, for WebRTC, the xr data
  // channel signaled over it.
  async openTransport() {
    await live.connect();
    this.unsubscribe.push(
      live.on("xr.status", (m) => {
        this.accepted = m.xr.frames_accepted;
        this.rejected = m.xr.frames_rejected || {};
        this.enrollment = m.xr.enrollment;
        this.enrollmentProgress = typeof m.xr.enrollment_progress === "number" ? m.xr.enrollment_progress : null;
        document.body.dataset.accepted = String(this.accepted);
        document.body.dataset.enrollment = this.enrollment;
        this.changed();
      }),
      live.on("xr.score", (m) => {
        document.body.dataset.scores = String(Number(document.body.dataset.scores || 0) + 1);
        document.body.dataset.probability = String(m.xr.probability);
      }),
      live.on("webrtc.answer", (m) => {
        if (this.pc) this.pc.setRemoteDescription({ type: "answer", sdp: m.sdp }).catch((e) => { this.lastError = "answer refused: " + e; this.changed(); });
      }),
      live.on("error", (m) => { this.lastError = m.reason || m.error; this.changed(); }),
      live.on("close", (e) => {
        if (this.mode !== "off") this.setLink(`realm connection closed (${e.code}${e.reason ? " " + e.reason : ""}); reconnecting`);
      }),
      live.on("open", () => {
        // The realm drops a peer connection with its WebSocket: signal a
        // new one after a reconnect.
        if (this.mode !== "off" && this.transport === "webrtc") this.openWebRTC().catch((e) => this.setLink("WebRTC failed: " + e.message));
        else if (this.mode !== "off") this.setLink("websocket open");
      }),
    );
    if (this.transport === "webrtc") {
      await this.openWebRTC();
    } else {
      this.setLink("websocket open");
    }
  },

  async openWebRTC() {
    this.closePeer();
    this.setLink("negotiating");
    const pc = new RTCPeerConnection();
    const dc = pc.createDataChannel("xr", { ordered: false, maxRetransmits: 0 });
    dc.binaryType = "arraybuffer";
    this.pc = pc;
    this.dc = dc;
    pc.onicecandidate = (e) => live.send({ type: "webrtc.candidate", candidate: e.candidate ? e.candidate.toJSON() : null });
    const opened = new Promise((resolve, reject) => {
      dc.onopen = resolve;
      pc.onconnectionstatechange = () => { if (pc.connectionState === "failed") reject(new Error("WebRTC connection failed")); };
      setTimeout(() => reject(new Error("the data channel did not open within 15 s")), 15000);
    });
    await pc.setLocalDescription(await pc.createOffer());
    live.send({ type: "webrtc.offer", sdp: pc.localDescription.sdp });
    await opened;
    this.setLink("data channel open");
  },

  // send delivers one frame message on the open transport; a message that
  // cannot go now is dropped, as a late pose is worthless.
  send(frames) {
    for (let i = 0; i < frames.length; i += MAX_FRAMES_PER_MESSAGE) {
      const batch = frames.slice(i, i + MAX_FRAMES_PER_MESSAGE);
      const msg = encodeFrames(batch);
      if (this.transport === "webrtc") {
        if (!this.dc || this.dc.readyState !== "open" || this.dc.bufferedAmount > MAX_BUFFERED) continue;
        this.dc.send(msg);
      } else if (!live.send(msg)) {
        continue;
      }
      this.sent += batch.length;
    }
    document.body.dataset.sent = String(this.sent);
  },

  // tick sends every simulated frame due since the last, at HZ, stamped
  // with the device clock.
  tick() {
    const now = performance.now();
    const due = Math.floor((now - this.lastTick) * HZ / 1000);
    if (due <= 0 || !this.wearer) return;
    const frames = [];
    for (let i = 0; i < Math.min(due, 4 * HZ); i++) {
      this.wearer.advance(1 / HZ);
      this.deviceUS += Math.round(1e6 / HZ);
      frames.push({ timeUS: this.deviceUS, seq: this.seq++, ...this.wearer.pose() });
    }
    this.lastTick += due * 1000 / HZ;
    this.lastHead = frames[frames.length - 1].head.pos;
    this.send(frames);
    this.changed();
  },

  // enterXR streams a real headset's poses: the viewer (head) and the
  // grip of each hand's controller, every XR frame, batched a few at a time.
  async enterXR(transport) {
    this.takeOff();
    this.transport = transport;
    const session = await navigator.xr.requestSession("immersive-vr", { optionalFeatures: ["local-floor"] });
    const canvas = document.createElement("canvas");
    const gl = canvas.getContext("webgl", { xrCompatible: true });
    await gl.makeXRCompatible();
    session.updateRenderState({ baseLayer: new XRWebGLLayer(session, gl) });
    let space;
    try {
      space = await session.requestReferenceSpace("local-floor");
    } catch {
      space = await session.requestReferenceSpace("local");
    }
    await this.openTransport();
    this.mode = "webxr";
    this.xr = { session, space, pending: [] };
    document.body.dataset.wearer = "webxr";
    session.addEventListener("end", () => { if (this.xr && this.xr.session === session) this.takeOff(); });
    const onFrame = (time, frame) => {
      if (!this.xr || this.xr.session !== session) return;
      session.requestAnimationFrame(onFrame);
      const layer = session.renderState.baseLayer;
      gl.bindFramebuffer(gl.FRAMEBUFFER, layer.framebuffer);
      gl.clearColor(0.05, 0.07, 0.1, 1);
      gl.clear(gl.COLOR_BUFFER_BIT);
      const viewer = frame.getViewerPose(space);
      if (!viewer) return;
      const asPose = (t) => ({ pos: [t.position.x, t.position.y, t.position.z], rot: [t.orientation.x, t.orientation.y, t.orientation.z, t.orientation.w] });
      const f = { timeUS: Math.round(time * 1000), seq: this.seq++, head: asPose(viewer.transform), left: null, right: null, tracked: 1 };
      for (const src of session.inputSources) {
        if (!src.gripSpace || (src.handedness !== "left" && src.handedness !== "right")) continue;
        const p = frame.getPose(src.gripSpace, space);
        if (!p) continue;
        f[src.handedness] = asPose(p.transform);
        f.tracked |= src.handedness === "left" ? 0b010 : 0b100;
      }
      this.xr.pending.push(f);
      this.lastHead = f.head.pos;
      if (this.xr.pending.length >= 4) {
        this.send(this.xr.pending);
        this.xr.pending = [];
        this.changed();
      }
    };
    session.requestAnimationFrame(onFrame);
    this.changed();
  },
};

export { PERSONAS };
