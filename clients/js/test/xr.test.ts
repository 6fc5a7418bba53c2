import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { RealmSocket, connectXR, encodeFrames, maxFramesPerMessage, type XRFrameSample, type XRPose } from "../src/index.js";
import { newAvatar, nodeWebSocket } from "./realm.js";

const here = path.dirname(fileURLToPath(import.meta.url));

interface Vector {
  name: string;
  frames: Array<{
    time_us: string;
    seq: number;
    head?: XRPose;
    left?: XRPose;
    right?: XRPose;
    gaze?: { dir: [number, number, number]; pupil_mm: number };
    heart_rate?: number;
  }>;
  hex: string;
}

test("the frame encoder writes the vectors the Go SDK writes, byte for byte", async () => {
  // Shared with clients/vr (TestAppendMessageVectors).
  const file = path.resolve(here, "..", "..", "..", "vr", "testdata", "frames.json");
  const vectors = JSON.parse(await readFile(file, "utf8")) as Vector[];
  assert.ok(vectors.length >= 4);
  for (const v of vectors) {
    const frames: XRFrameSample[] = v.frames.map((f) => {
      const s: XRFrameSample = { timeUs: BigInt(f.time_us), seq: f.seq, head: f.head ?? { pos: [0, 0, 0], rot: [0, 0, 0, 0], tracked: false } };
      if (f.left) s.left = f.left;
      if (f.right) s.right = f.right;
      if (f.gaze) s.gaze = { dir: f.gaze.dir, pupilMm: f.gaze.pupil_mm };
      if (f.heart_rate) s.heartRate = f.heart_rate;
      return s;
    });
    assert.equal(Buffer.from(encodeFrames(frames)).toString("hex"), v.hex, v.name);
  }
});

test("a message holds at most 32 frames", () => {
  const frame: XRFrameSample = { timeUs: 1, seq: 0, head: { pos: [0, 1.7, 0], rot: [0, 0, 0, 1], tracked: true }, gaze: { dir: [0, 0, -1], pupilMm: 3 }, heartRate: 70 };
  assert.equal(encodeFrames(Array(maxFramesPerMessage).fill(frame)).length, 4 + 32 * 120);
  assert.throws(() => encodeFrames(Array(maxFramesPerMessage + 1).fill(frame)), RangeError);
});

const sockets: RealmSocket[] = [];
after(() => sockets.forEach((s) => s.close()));

test("without WebRTC, frames go over the realm WebSocket and the realm counts them", async () => {
  const a = await newAvatar("xr");
  const socket = new RealmSocket(a.client, { webSocket: nodeWebSocket });
  sockets.push(socket);
  await socket.connect();
  const transport = await connectXR(socket); // Node has no RTCPeerConnection
  assert.equal(transport.kind, "websocket");
  const status = socket.next("xr", (m) => m.type === "xr.status" && Number(m.xr.frames_accepted) >= 8);
  // Messages of four frames at 90 Hz, every 45 ms as a headset sends them,
  // until the realm reports (at most once a second, while frames flow): a
  // head swaying a little, as a person's does.
  let reported = false;
  void status.then(() => (reported = true), () => (reported = true));
  for (let n = 0; !reported && n < 4 * 400; n += 4) {
    const frames: XRFrameSample[] = [];
    for (let i = n; i < n + 4; i++) {
      frames.push({ timeUs: 1_000_000 + i * 11_111, seq: i, head: { pos: [0.01 * Math.sin(i / 9), 1.7, 0.01 * Math.cos(i / 9)], rot: [0, 0, 0, 1], tracked: true } });
    }
    assert.ok(transport.send(encodeFrames(frames)));
    await new Promise((r) => setTimeout(r, 45));
  }
  const s = await status;
  assert.equal(s.xr.transport, "websocket");
});
