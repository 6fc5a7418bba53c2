import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { after, test } from "node:test";
import { NodeBusyError, RealmSocket, connectXR, defaultNodeBusyRetryMs, encodeFrames, type XRFrameSample, type XRTransport } from "../src/index.js";
import type { RealmProcess } from "./realm-process.js";
import { newAvatar, nodeWebSocket, ownRealm } from "./realm.js";

// A realm socket that counts the frame messages it put on the wire, so a
// test sees what a transport really sent, not what it was asked to.
class CountingSocket extends RealmSocket {
  framesSent = 0;
  override sendFrames(message: Uint8Array): boolean {
    const sent = super.sendFrames(message);
    if (sent) this.framesSent++;
    return sent;
  }
}

// A headset offering its transport a message of four frames every 45 ms,
// stamped from the monotonic clock as a device stamps them (the realm
// checks that device time keeps pace with arrival), its head swaying with
// a little tremor, as a person's does.
function headset(transport: XRTransport): { offered: () => number; stop: () => void } {
  let seq = 0;
  let lastUs = 0;
  let offered = 0;
  const timer = setInterval(() => {
    const nowUs = Math.round(performance.now() * 1000);
    const frames: XRFrameSample[] = [];
    for (let k = 3; k >= 0; k--) {
      const us = Math.max(nowUs - k * 11_111, lastUs + 1);
      lastUs = us;
      const i = seq++;
      const tremor = () => (Math.random() - 0.5) * 0.002;
      frames.push({ timeUs: us, seq: i, head: { pos: [0.02 * Math.sin(i / 9) + tremor(), 1.7 + tremor(), 0.02 * Math.cos(i / 9) + tremor()], rot: [0, 0, 0, 1], tracked: true } });
    }
    offered++;
    transport.send(encodeFrames(frames));
  }, 45);
  return { offered: () => offered, stop: () => clearInterval(timer) };
}

interface Wearer {
  socket: CountingSocket;
  transport: XRTransport;
  headset: ReturnType<typeof headset>;
  refusals: NodeBusyError[];
  /** Resolves with the first refusal. */
  refused: Promise<NodeBusyError>;
  close(): void;
}

async function wearer(realm: RealmProcess, onNodeBusy?: (w: Wearer, r: NodeBusyError) => void): Promise<Wearer> {
  const a = await newAvatar("busy", realm.url);
  const socket = new CountingSocket(a.client, { webSocket: nodeWebSocket });
  await socket.connect();
  const refusals: NodeBusyError[] = [];
  const w = {} as Wearer;
  w.socket = socket;
  w.refusals = refusals;
  let firstRefusal: (r: NodeBusyError) => void;
  w.refused = new Promise((resolve) => (firstRefusal = resolve));
  w.transport = await connectXR(socket, {
    onNodeBusy: (r) => {
      refusals.push(r);
      firstRefusal(r);
      onNodeBusy?.(w, r);
    },
  }); // Node has no RTCPeerConnection: the WebSocket
  w.headset = headset(w.transport);
  w.close = () => {
    w.headset.stop();
    w.transport.close();
    socket.close();
  };
  return w;
}

// Resolves once the headset has offered n more messages.
async function offeredMore(w: Wearer, n: number): Promise<void> {
  const target = w.headset.offered() + n;
  while (w.headset.offered() < target) await new Promise((r) => setTimeout(r, 45));
}

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test("a node at its cap refuses a second stream: the transport tells, sends nothing for retry_after, then streams", { timeout: 120_000 }, async () => {
  const realm = await ownRealm(["--max-xr-streams", "1"]);
  cleanups.push(() => realm.stop());

  const first = await wearer(realm);
  cleanups.push(() => first.close());
  await first.socket.next("xr", (m) => m.type === "xr.status" && m.xr.frames_accepted > 0);

  const second = await wearer(realm);
  cleanups.push(() => second.close());
  // A third goes elsewhere at its refusal, as an application that has
  // another node would: closing its transport ends the wait.
  const third = await wearer(realm, (w) => w.transport.close());
  cleanups.push(() => third.close());

  const [refusal] = await Promise.all([second.refused, third.refused]);
  assert.ok(refusal instanceof NodeBusyError);
  assert.equal(refusal.code, "node-busy");
  assert.equal(refusal.retryAfter, 15, "the realm's wait at its cap");
  assert.equal(refusal.retryAfterMs, 15_000);
  assert.match(refusal.message, /at capacity/);
  assert.equal(second.transport.refused, refusal);
  assert.equal(third.refusals.length, 1);
  assert.equal(third.transport.refused, undefined, "a closed transport waits for nothing");

  // Frames offered while refused stay off the wire: the node would drop
  // them unread. (At most the message already on its way when the
  // refusal came was sent after the first refused one.)
  const sentWhenRefused = second.socket.framesSent;
  const thirdSent = third.socket.framesSent;
  await offeredMore(second, 20);
  assert.equal(second.socket.framesSent, sentWhenRefused, "frames sent to a node that refused the stream");

  // The first leaves; the second streams once its wait is over, and not
  // before: frames sent before the realm's retry time would be refused
  // again.
  first.close();
  const status = await second.socket.next("xr", (m) => m.type === "xr.status" && m.xr.frames_accepted > 0);
  assert.equal(status.xr.transport, "websocket");
  assert.equal(second.transport.refused, undefined);
  assert.equal(second.refusals.length, 1, `refused again: ${second.refusals.map((r) => r.message).join("; ")}`);
  assert.ok(second.socket.framesSent > sentWhenRefused);
  assert.equal(third.socket.framesSent, thirdSent, "the closed transport sent frames");
});

test("a refusal's wait is the realm's retry_after, or the documented default when it names none a timer can keep", () => {
  const busy = (retry_after?: unknown) => new NodeBusyError({ type: "error", code: "node-busy", error: "busy", ...(retry_after === undefined ? {} : { retry_after: retry_after as number }) });
  const cases: Array<[string, unknown, number]> = [
    ["at capacity", 15, 15_000],
    ["behind", 5, 5_000],
    ["now", 0, 0],
    ["absent", undefined, defaultNodeBusyRetryMs],
    ["negative", -3, defaultNodeBusyRetryMs],
    ["not a number", "15", defaultNodeBusyRetryMs],
    ["infinite", Infinity, defaultNodeBusyRetryMs],
    // A timer fires at once beyond 2^31 - 1 ms: longer is held at that.
    ["beyond a timer", 1e12, 2 ** 31 - 1],
  ];
  for (const [name, retryAfter, wantMs] of cases) assert.equal(busy(retryAfter).retryAfterMs, wantMs, name);
});
