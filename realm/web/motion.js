// A model of how a person wearing a headset moves: the body drifts, the
// head turns after the dominant hand, the hands wander around a rest
// position held by a damped spring driven by noise, with a physiological
// tremor. It follows the model the realm's biometrics engine is calibrated
// against (biometrics/synth), so the engine can tell these personas apart
// as it would tell people apart. Plain ES module, no dependencies.

// mulberry32: a small seeded generator, so a persona moves the same way on
// every run.
export function rng(seed) {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  let spare = null;
  // normal: Box-Muller, one pair at a time.
  uniform.normal = () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const u = Math.max(uniform(), 1e-12), v = uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
  return uniform;
}

const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);

// The personas a tester can put the headset on. Each is a body and a way
// of moving, chosen to differ the way different people do.
export const PERSONAS = [
  { id: 1, label: "Ada: tall, calm, right-handed", height: 1.84, activity: 0.55, tempo: 0.3, headFollow: 0.3, rightHanded: true, tremorHz: 9, tremorMM: 0.2 },
  { id: 2, label: "Ben: short, restless, left-handed", height: 1.6, activity: 1.15, tempo: 0.65, headFollow: 0.75, rightHanded: false, tremorHz: 11.5, tremorMM: 0.55 },
  { id: 3, label: "Chen: average, quick hands", height: 1.72, activity: 0.9, tempo: 0.55, headFollow: 0.5, rightHanded: true, tremorHz: 10.5, tremorMM: 0.35 },
  { id: 4, label: "Dora: tall, slow sway", height: 1.78, activity: 0.45, tempo: 0.28, headFollow: 0.65, rightHanded: true, tremorHz: 8.3, tremorMM: 0.15 },
];

// person completes a persona's body from its seed: arm length, shoulders,
// where the hands rest and how the controllers are gripped.
export function person(spec) {
  const r = rng(spec.id * 7919 + 17);
  const p = { ...spec };
  p.armLength = 0.44 * p.height * (1 + 0.04 * r.normal());
  p.shoulders = 0.23 * p.height * (1 + 0.05 * r.normal());
  p.rest = [0, 1].map((h) => {
    const side = h === 0 ? -1 : 1;
    return [
      side * (p.shoulders / 2 + 0.03 + 0.05 * r()),
      -(0.35 + 0.25 * r()) * p.height / 1.72,
      (0.1 + 0.3 * r()) * p.armLength / 0.75,
    ];
  });
  p.grip = [0, 1].map(() => [0.25 * r.normal(), -0.3 + 0.25 * r.normal(), 0.2 * r.normal()]);
  p.pitchBias = -0.1 + 0.08 * r.normal();
  p.rollBias = 0.04 * r.normal();
  return p;
}

// A damped spring driven by noise: smooth positions at human speeds.
class Oscillator {
  constructor() {
    this.x = [0, 0, 0];
    this.v = [0, 0, 0];
  }

  step(r, rest, omega, sigma, dt) {
    const zeta = 0.7;
    for (let k = 0; k < 3; k++) {
      const a = -omega * omega * (this.x[k] - rest[k]) - 2 * zeta * omega * this.v[k];
      this.v[k] += a * dt + sigma * Math.sqrt(dt) * r.normal();
      this.x[k] += this.v[k] * dt;
    }
  }
}

function axisQ(axis, a) {
  const s = Math.sin(a / 2);
  return [axis[0] * s, axis[1] * s, axis[2] * s, Math.cos(a / 2)];
}

function mul(a, b) {
  return [
    a[3] * b[0] + a[0] * b[3] + a[1] * b[2] - a[2] * b[1],
    a[3] * b[1] - a[0] * b[2] + a[1] * b[3] + a[2] * b[0],
    a[3] * b[2] + a[0] * b[1] - a[1] * b[0] + a[2] * b[3],
    a[3] * b[3] - a[0] * b[0] - a[1] * b[1] - a[2] * b[2],
  ];
}

const yawQ = (a) => axisQ([0, 1, 0], a);

// Wearer is one person wearing the headset for one session: the day's
// drift of posture and pace, and where the play area is in the scene.
export class Wearer {
  // origin is where in the scene (x, z, metres) the play area is.
  constructor(spec, session, origin = [0, 0]) {
    const base = person(spec);
    const r = rng(spec.id * 104729 + session * 31 + 7);
    const p = { ...base, rest: base.rest.map((v) => v.slice()), grip: base.grip.map((v) => v.slice()) };
    for (let h = 0; h < 2; h++) {
      for (let k = 0; k < 3; k++) {
        p.rest[h][k] += 0.015 * r.normal();
        p.grip[h][k] += 0.04 * r.normal();
      }
    }
    p.pitchBias += 0.03 * r.normal();
    p.activity *= 1 + 0.1 * r.normal();
    p.tempo *= 1 + 0.08 * r.normal();
    this.p = p;
    this.r = rng(spec.id * 15485863 + session * 977 + 3);
    this.origin = origin;
    this.worldYaw = 2 * Math.PI * r();
    this.body = new Oscillator();
    this.head = new Oscillator();
    this.hand = [new Oscillator(), new Oscillator()];
    this.hand[0].x = p.rest[0].slice();
    this.hand[1].x = p.rest[1].slice();
    this.tremor = [[r() * 6, r() * 6, r() * 6], [r() * 6, r() * 6, r() * 6]];
  }

  // advance moves the body on by dt seconds, in small steps for stability.
  advance(dt) {
    const maxStep = 0.005;
    let total = dt;
    while (total > 1e-9) {
      const h = Math.min(total, maxStep);
      this.step(h);
      total -= h;
    }
  }

  step(dt) {
    const p = this.p, r = this.r;
    this.body.step(r, [0, 0, 0], 2 * Math.PI * 0.05, 0.15, dt);
    this.head.step(r, [0, p.pitchBias, p.rollBias], 2 * Math.PI * 0.3, 0.25, dt);
    const omega = 2 * Math.PI * p.tempo;
    for (let h = 0; h < 2; h++) {
      let sigma = 0.12 * p.activity;
      if ((h === 1) === p.rightHanded) sigma *= 1.4;
      this.hand[h].step(r, p.rest[h], omega, sigma, dt);
      for (let k = 0; k < 3; k++) this.tremor[h][k] += 2 * Math.PI * p.tremorHz * dt + 0.3 * Math.sqrt(dt) * r.normal();
    }
  }

  // pose is where head and hands are now: {head, left, right}, each
  // {pos: [x, y, z], rot: [x, y, z, w]} in the OpenXR frame.
  pose() {
    const p = this.p;
    const dom = p.rightHanded ? 1 : 0;
    const bodyYaw = this.worldYaw + 0.6 * this.body.x[1];
    const headYaw = bodyYaw + this.head.x[0] - p.headFollow * (this.hand[dom].x[0] - p.rest[dom][0]);
    const pitch = clamp(this.head.x[1], -1.2, 1.2);
    const headRot = mul(mul(yawQ(headYaw), axisQ([1, 0, 0], pitch)), axisQ([0, 0, -1], this.head.x[2]));
    const eye = 0.936 * p.height;
    const headPos = [this.origin[0] + 0.4 * this.body.x[0], eye + 0.01 * this.head.x[1], this.origin[1] + 0.4 * this.body.x[2]];
    const right = [Math.cos(bodyYaw), 0, -Math.sin(bodyYaw)], fwd = [-Math.sin(bodyYaw), 0, -Math.cos(bodyYaw)];
    const hands = [0, 1].map((h) => {
      const x = this.hand[h].x;
      const pos = [0, 1, 2].map((k) => headPos[k] + right[k] * x[0] + fwd[k] * x[2]);
      pos[1] += x[1];
      const a = p.tremorMM / 1000;
      for (let k = 0; k < 3; k++) pos[k] += a * Math.sin(this.tremor[h][k]) + 0.00005 * this.r.normal();
      const g = p.grip[h];
      const rot = mul(mul(yawQ(bodyYaw + g[0] + 0.3 * this.hand[h].v[0]), axisQ([1, 0, 0], g[1] + 0.5 * this.hand[h].v[1])), axisQ([0, 0, -1], g[2]));
      return { pos, rot };
    });
    return { head: { pos: headPos, rot: headRot }, left: hands[0], right: hands[1] };
  }
}

// --- wire format (clients/PROTOCOL.md, XR frames v1) ---

export const MAX_FRAMES_PER_MESSAGE = 32;
const FRAME_SIZE = 8 + 4 + 4 + 3 * 7 * 4;

// encodeFrames packs frames ({timeUS, seq, head, left, right, tracked})
// into one binary message. tracked is the flags' low three bits (head,
// left, right); an untracked pose is sent as zeros.
export function encodeFrames(frames) {
  const buf = new ArrayBuffer(4 + frames.length * FRAME_SIZE);
  const v = new DataView(buf);
  v.setUint8(0, 1); // format version
  v.setUint8(1, frames.length);
  let o = 4;
  for (const f of frames) {
    const tracked = f.tracked ?? 0b111;
    v.setBigUint64(o, BigInt(Math.round(f.timeUS)), true); o += 8;
    v.setUint32(o, f.seq >>> 0, true); o += 4;
    v.setUint32(o, tracked, true); o += 4;
    [f.head, f.left, f.right].forEach((pose, i) => {
      const on = (tracked >> i) & 1 && pose;
      for (const x of on ? pose.pos : [0, 0, 0]) { v.setFloat32(o, x, true); o += 4; }
      for (const x of on ? pose.rot : [0, 0, 0, 1]) { v.setFloat32(o, x, true); o += 4; }
    });
  }
  return buf;
}
