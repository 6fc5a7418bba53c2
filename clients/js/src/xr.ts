import type { RealmSocket } from "./realm-socket.js";

/** The first byte of every frame message (clients/PROTOCOL.md "XR frames"). */
export const xrFormatVersion = 1;
/** The most frames one message may carry. */
export const maxFramesPerMessage = 32;
const headerSize = 4;
const poseSize = 28;
const frameBaseSize = 8 + 4 + 4 + 3 * poseSize;

/** One tracked device: metres and a unit quaternion x, y, z, w, in OpenXR's frame. */
export interface XRPose {
  pos: readonly [number, number, number];
  rot: readonly [number, number, number, number];
  /** An untracked device's pose is ignored by the realm (send the last known or zeros). */
  tracked: boolean;
}

/** One sample of the headset and both controllers. */
export interface XRFrameSample {
  /** Device clock in microseconds, strictly increasing within a stream (bigint beyond 2^53). */
  timeUs: number | bigint;
  /** The sender's frame counter; the realm echoes it in xr.score. */
  seq: number;
  head: XRPose;
  left?: XRPose;
  right?: XRPose;
  /** Combined eye-gaze direction in the head's frame, and the pupil in mm (0: unknown). */
  gaze?: { dir: readonly [number, number, number]; pupilMm: number };
  /** Beats per minute; absent or 0 when there is none. */
  heartRate?: number;
}

// An absent device is written as zeros, as the Go SDK writes it; the realm
// ignores an untracked pose.
const untracked: XRPose = { pos: [0, 0, 0], rot: [0, 0, 0, 0], tracked: false };

/**
 * encodeFrames writes one frame message, byte for byte as
 * clients/PROTOCOL.md lays it out (and as the Go SDK's AppendMessage does:
 * clients/vr/testdata/frames.json holds the vectors both check). Values are
 * written as given: the realm judges them, so a client's bug shows in its
 * reject counters. More than 32 frames is a RangeError.
 */
export function encodeFrames(frames: readonly XRFrameSample[]): Uint8Array<ArrayBuffer> {
  if (frames.length > maxFramesPerMessage) throw new RangeError(`xr: ${frames.length} frames, at most ${maxFramesPerMessage} per message`);
  let size = headerSize;
  for (const f of frames) size += frameBaseSize + (f.gaze ? 16 : 0) + (f.heartRate ? 4 : 0);
  const buf = new ArrayBuffer(size);
  const view = new DataView(buf);
  view.setUint8(0, xrFormatVersion);
  view.setUint8(1, frames.length);
  let at = headerSize;
  const f32 = (v: number) => {
    view.setFloat32(at, v, true);
    at += 4;
  };
  for (const f of frames) {
    const poses = [f.head, f.left ?? untracked, f.right ?? untracked];
    let flags = 0;
    poses.forEach((p, bit) => {
      if (p.tracked) flags |= 1 << bit;
    });
    if (f.gaze) flags |= 1 << 3;
    if (f.heartRate) flags |= 1 << 4;
    view.setBigUint64(at, BigInt(f.timeUs), true);
    view.setUint32(at + 8, f.seq >>> 0, true);
    view.setUint32(at + 12, flags, true);
    at += 16;
    for (const p of poses) {
      p.pos.forEach(f32);
      p.rot.forEach(f32);
    }
    if (f.gaze) {
      f.gaze.dir.forEach(f32);
      f32(f.gaze.pupilMm);
    }
    if (f.heartRate) f32(f.heartRate);
  }
  return new Uint8Array(buf);
}

/** Where frame messages go: a WebRTC data channel, or the realm WebSocket. */
export interface XRTransport {
  readonly kind: "webrtc" | "websocket";
  /** Sends one message; false when it could not (closed, or the channel is backed up). */
  send(message: Uint8Array<ArrayBuffer>): boolean;
  close(): void;
}

/** The realm WebSocket as a transport: binary messages on /v1/realm. */
export function webSocketTransport(socket: RealmSocket): XRTransport {
  return { kind: "websocket", send: (m) => socket.sendFrames(m), close: () => {} };
}

/** Options of {@link connectXR}. */
export interface ConnectXROptions {
  /** Try WebRTC first (default true where RTCPeerConnection exists). */
  webRTC?: boolean;
  /** How long the data channel may take to open before the WebSocket is used (default 10 000 ms). */
  timeoutMs?: number;
  /** ICE servers for the peer connection (default none: the realm gathers host candidates and its public address). */
  iceServers?: RTCIceServer[];
  /** A channel with more than this many bytes waiting drops messages rather than queueing stale poses (default 64 KiB). */
  maxBufferedBytes?: number;
}

/**
 * connectXR opens the preferred transport for XR frames: a WebRTC data
 * channel labelled `xr`, unordered with no retransmits (a late pose is
 * worthless), signaled over the realm WebSocket with all candidates in the
 * offer; when WebRTC is missing or does not open in time, the WebSocket's
 * binary messages.
 */
export async function connectXR(socket: RealmSocket, opts: ConnectXROptions = {}): Promise<XRTransport> {
  const RTC = (globalThis as { RTCPeerConnection?: typeof RTCPeerConnection }).RTCPeerConnection;
  if (opts.webRTC === false || !RTC) return webSocketTransport(socket);
  const pc = new RTC({ iceServers: opts.iceServers ?? [] });
  try {
    const channel = pc.createDataChannel("xr", { ordered: false, maxRetransmits: 0 });
    channel.binaryType = "arraybuffer";
    await pc.setLocalDescription(await pc.createOffer());
    await iceGatheringComplete(pc, opts.timeoutMs ?? 10_000);
    const answer = socket.next("webrtc.answer");
    if (!socket.send({ type: "webrtc.offer", sdp: pc.localDescription!.sdp })) throw new Error("realm socket not connected");
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("xr: data channel did not open in time")), opts.timeoutMs ?? 10_000));
    const { sdp } = await Promise.race([answer, timeout]);
    await pc.setRemoteDescription({ type: "answer", sdp });
    await Promise.race([new Promise<void>((resolve) => (channel.readyState === "open" ? resolve() : channel.addEventListener("open", () => resolve(), { once: true }))), timeout]);
    const limit = opts.maxBufferedBytes ?? 64 * 1024;
    return {
      kind: "webrtc",
      send(m) {
        if (channel.readyState !== "open" || channel.bufferedAmount > limit) return false;
        channel.send(m);
        return true;
      },
      close() {
        channel.close();
        pc.close();
      },
    };
  } catch {
    pc.close();
    return webSocketTransport(socket);
  }
}

function iceGatheringComplete(pc: RTCPeerConnection, timeoutMs: number): Promise<void> {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState !== "complete") return;
      pc.removeEventListener("icegatheringstatechange", done);
      resolve();
    };
    pc.addEventListener("icegatheringstatechange", done);
    // Send what was gathered by then: host candidates come first.
    setTimeout(resolve, timeoutMs / 2);
  });
}

/** The parts of a WebXR session the streamer reads (lib.dom has no WebXR types). */
export interface XRSessionLike {
  requestAnimationFrame(cb: (time: number, frame: XRFrameLike) => void): number;
  cancelAnimationFrame(handle: number): void;
  readonly inputSources: Iterable<{ handedness: string; gripSpace?: unknown }>;
}
export interface XRFrameLike {
  getViewerPose(space: unknown): { transform: XRRigidTransformLike; emulatedPosition?: boolean } | null | undefined;
  getPose(space: unknown, base: unknown): { transform: XRRigidTransformLike; emulatedPosition?: boolean } | null | undefined;
}
export interface XRRigidTransformLike {
  position: { x: number; y: number; z: number };
  orientation: { x: number; y: number; z: number; w: number };
}

/** Options of {@link streamXR}. */
export interface StreamXROptions {
  /** Frames per message (default 4: about 50 ms at 72-90 Hz). */
  batch?: number;
  /** Adds a heart rate or gaze to each sample, where the device has them. */
  decorate?: (sample: XRFrameSample) => XRFrameSample;
}

/**
 * streamXR reads the viewer's and both controllers' poses from a WebXR
 * session on every animation frame, in one reference space (stage or
 * local, fixed for the session), and sends them in batches over the
 * transport. It returns the function that stops it.
 */
export function streamXR(session: XRSessionLike, space: unknown, transport: XRTransport, opts: StreamXROptions = {}): () => void {
  const batch = Math.min(Math.max(1, opts.batch ?? 4), maxFramesPerMessage);
  let pending: XRFrameSample[] = [];
  let seq = 0;
  let lastUs = 0;
  let handle = 0;
  let stopped = false;
  const toPose = (p: { transform: XRRigidTransformLike; emulatedPosition?: boolean } | null | undefined): XRPose => {
    if (!p) return untracked;
    const { position: a, orientation: o } = p.transform;
    return { pos: [a.x, a.y, a.z], rot: [o.x, o.y, o.z, o.w], tracked: !p.emulatedPosition };
  };
  const onFrame = (time: number, frame: XRFrameLike) => {
    if (stopped) return;
    handle = session.requestAnimationFrame(onFrame);
    // time is the frame's DOMHighResTimeStamp in ms; the wire wants strictly increasing µs.
    const us = Math.max(Math.round(time * 1000), lastUs + 1);
    lastUs = us;
    const sample: XRFrameSample = { timeUs: us, seq: seq++, head: toPose(frame.getViewerPose(space)) };
    for (const src of session.inputSources) {
      if (!src.gripSpace) continue;
      if (src.handedness === "left") sample.left = toPose(frame.getPose(src.gripSpace, space));
      if (src.handedness === "right") sample.right = toPose(frame.getPose(src.gripSpace, space));
    }
    pending.push(opts.decorate ? opts.decorate(sample) : sample);
    if (pending.length >= batch) {
      transport.send(encodeFrames(pending));
      pending = [];
    }
  };
  handle = session.requestAnimationFrame(onFrame);
  return () => {
    stopped = true;
    session.cancelAnimationFrame(handle);
  };
}
