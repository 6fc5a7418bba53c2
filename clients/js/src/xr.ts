import { NodeBusyError, type RealmSocket } from "./realm-socket.js";

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
  /**
   * Sends one message; false when it could not (closed, the channel is
   * backed up, or the node refused the stream and its wait is not over).
   */
  send(message: Uint8Array<ArrayBuffer>): boolean;
  /** The node's refusal being waited out; undefined while frames may flow. */
  readonly refused?: NodeBusyError | undefined;
  /** Stops the transport, and any wait for a busy node with it. */
  close(): void;
}

/** What every transport of this SDK does when the node opens no stream. */
export interface XRTransportOptions {
  /**
   * Told of every `node-busy` refusal. The transport itself sends nothing
   * for the refusal's `retryAfter` and then tries again (frames, or a new
   * offer while the data channel is not open yet); an application that
   * would rather go to another node closes the transport (or aborts
   * {@link ConnectXROptions.signal}) and connects there.
   */
  onNodeBusy?: (refusal: NodeBusyError) => void;
}

/**
 * NodeBusyWait holds a transport's frames back while its node refuses it
 * a stream: from a node-busy error on the realm socket until its
 * retry_after has passed. Frames sent before then would be dropped unread
 * and only earn the same refusal again. A later refusal (of frames that
 * were already on their way) re-arms the wait with the time the realm
 * says is left.
 */
class NodeBusyWait {
  #refusal: NodeBusyError | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #stopListening: () => void;

  constructor(
    socket: RealmSocket,
    private readonly onNodeBusy: ((refusal: NodeBusyError) => void) | undefined,
  ) {
    this.#stopListening = socket.on("error", (e) => {
      if (e.code === "node-busy") this.#refuse(new NodeBusyError(e));
    });
  }

  get refusal(): NodeBusyError | undefined {
    return this.#refusal;
  }

  #refuse(refusal: NodeBusyError): void {
    clearTimeout(this.#timer);
    this.#refusal = refusal;
    this.#timer = setTimeout(() => (this.#refusal = undefined), refusal.retryAfterMs);
    // Last: the application may close the transport from here.
    this.onNodeBusy?.(refusal);
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#refusal = undefined;
    this.#stopListening();
  }
}

/** The realm WebSocket as a transport: binary messages on /v1/realm. */
export function webSocketTransport(socket: RealmSocket, opts: XRTransportOptions = {}): XRTransport {
  const wait = new NodeBusyWait(socket, opts.onNodeBusy);
  let closed = false;
  return {
    kind: "websocket",
    get refused() {
      return wait.refusal;
    },
    send: (m) => !closed && !wait.refusal && socket.sendFrames(m),
    close() {
      closed = true;
      wait.close();
    },
  };
}

/** Options of {@link connectXR}. */
export interface ConnectXROptions extends XRTransportOptions {
  /** Try WebRTC first (default true where RTCPeerConnection exists). */
  webRTC?: boolean;
  /** How long the data channel may take to open before the WebSocket is used (default 10 000 ms). */
  timeoutMs?: number;
  /** ICE servers for the peer connection (default none: the realm gathers host candidates and its public address). */
  iceServers?: RTCIceServer[];
  /** A channel with more than this many bytes waiting drops messages rather than queueing stale poses (default 64 KiB). */
  maxBufferedBytes?: number;
  /**
   * Gives up connecting, a wait for a busy node included: connectXR then
   * rejects with the signal's reason.
   */
  signal?: AbortSignal;
}

/**
 * connectXR opens the preferred transport for XR frames: a WebRTC data
 * channel labelled `xr`, unordered with no retransmits (a late pose is
 * worthless), signaled over the realm WebSocket with all candidates in the
 * offer; when WebRTC is missing or does not open in time, the WebSocket's
 * binary messages. A node too busy to open a stream refuses the offer with
 * `node-busy`: connectXR then tells {@link ConnectXROptions.onNodeBusy},
 * waits the refusal's `retryAfter` and offers again, until the channel
 * opens or {@link ConnectXROptions.signal} aborts. Falling back to the
 * WebSocket then would only be refused too.
 */
export async function connectXR(socket: RealmSocket, opts: ConnectXROptions = {}): Promise<XRTransport> {
  const RTC = (globalThis as { RTCPeerConnection?: typeof RTCPeerConnection }).RTCPeerConnection;
  opts.signal?.throwIfAborted();
  if (opts.webRTC === false || !RTC) return webSocketTransport(socket, opts);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const pc = new RTC({ iceServers: opts.iceServers ?? [] });
  let channel: RTCDataChannel;
  try {
    channel = pc.createDataChannel("xr", { ordered: false, maxRetransmits: 0 });
    channel.binaryType = "arraybuffer";
    await pc.setLocalDescription(await pc.createOffer());
    await iceGatheringComplete(pc, timeoutMs);
    // The realm made no peer connection for a refused offer, so the same
    // offer is sent again once the wait is over.
    let answer: string | NodeBusyError;
    while (typeof (answer = await offerOnce(socket, pc.localDescription!.sdp, timeoutMs, opts.signal)) !== "string") {
      opts.onNodeBusy?.(answer);
      await delay(answer.retryAfterMs, opts.signal);
    }
    await pc.setRemoteDescription({ type: "answer", sdp: answer });
    await withTimeout(
      new Promise<void>((resolve) => (channel.readyState === "open" ? resolve() : channel.addEventListener("open", () => resolve(), { once: true }))),
      timeoutMs,
      opts.signal,
    );
  } catch {
    pc.close();
    if (opts.signal?.aborted) throw opts.signal.reason;
    return webSocketTransport(socket, opts);
  }
  // A node can still refuse the stream at the first frames (another
  // session took the last place since the offer): the channel stays open
  // and only the frames wait.
  const wait = new NodeBusyWait(socket, opts.onNodeBusy);
  const limit = opts.maxBufferedBytes ?? 64 * 1024;
  return {
    kind: "webrtc",
    get refused() {
      return wait.refusal;
    },
    send(m) {
      if (wait.refusal || channel.readyState !== "open" || channel.bufferedAmount > limit) return false;
      channel.send(m);
      return true;
    },
    close() {
      wait.close();
      channel.close();
      pc.close();
    },
  };
}

// offerOnce sends the offer and resolves with the realm's answer SDP, or
// with its node-busy refusal; it rejects when neither comes in time.
async function offerOnce(socket: RealmSocket, sdp: string, timeoutMs: number, signal?: AbortSignal): Promise<string | NodeBusyError> {
  const listening = new AbortController();
  const stop = () => listening.abort(signal?.reason);
  signal?.addEventListener("abort", stop, { once: true });
  try {
    // The answer comes in a later message, so listening after sending misses nothing.
    if (!socket.send({ type: "webrtc.offer", sdp })) throw new Error("realm socket not connected");
    const outcome = Promise.race([
      socket.next("webrtc.answer", undefined, listening.signal).then((a) => a.sdp),
      socket.next("error", (e) => e.code === "node-busy", listening.signal).then((e) => new NodeBusyError(e)),
    ]);
    return await withTimeout(outcome, timeoutMs, signal);
  } finally {
    signal?.removeEventListener("abort", stop);
    listening.abort();
  }
}

async function withTimeout<T>(p: Promise<T>, timeoutMs: number, signal?: AbortSignal): Promise<T> {
  const expired = new AbortController();
  try {
    return await Promise.race([p, delay(timeoutMs, AbortSignal.any([expired.signal, ...(signal ? [signal] : [])])).then(() => Promise.reject(new Error("xr: data channel did not open in time")))]);
  } finally {
    expired.abort();
  }
}

// delay resolves after ms, or rejects with the signal's reason when it
// aborts first; its timer does not outlive it.
function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const abort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", abort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", abort, { once: true });
  });
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
      // While the node refuses the stream the batch is dropped unencoded:
      // poses are worthless by the time it lets the stream in.
      if (!transport.refused) transport.send(encodeFrames(pending));
      pending = [];
    }
  };
  handle = session.requestAnimationFrame(onFrame);
  return () => {
    stopped = true;
    session.cancelAnimationFrame(handle);
  };
}
