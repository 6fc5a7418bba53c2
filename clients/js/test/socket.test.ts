import assert from "node:assert/strict";
import net from "node:net";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { CloseCode, JoinError, Passkeys, RealmClient, RealmSocket, SocketClosedError, Sessions, backoffDelay } from "../src/index.js";
import { SoftwareAuthenticator } from "../src/testing/index.js";
import { ownAddress, newAvatar, nodeWebSocket, realmURL, type Avatar } from "./realm.js";

const sockets: RealmSocket[] = [];
after(() => sockets.forEach((s) => s.close()));

function socketOf(a: Avatar, opts: ConstructorParameters<typeof RealmSocket>[1] = {}): RealmSocket {
  const s = new RealmSocket(a.client, { webSocket: nodeWebSocket, backoff: { initialMs: 20, maxMs: 200 }, ...opts });
  sockets.push(s);
  return s;
}

test("hello, join, presence and poses between two avatars", async () => {
  const ada = await newAvatar("ada");
  const bob = await newAvatar("bob");
  const a = socketOf(ada);
  const hello = await a.connect();
  assert.equal(hello.avatar.id, ada.signedIn.avatar.id);
  assert.equal(hello.v, 1);
  assert.ok(["trusted", "step-up", "suspended"].includes(hello.trust.state));
  const joinedA = await a.join("foundry");
  assert.equal(joinedA.scene, "foundry");

  const b = socketOf(bob);
  await b.connect();
  const seenJoin = a.next("presence", (e) => e.avatar === bob.signedIn.avatar.id && e.event === "join");
  const joinedB = await b.join("foundry");
  assert.ok(joinedB.members.some((m) => m.avatar === ada.signedIn.avatar.id), "bob's snapshot holds ada");
  const join = await seenJoin;
  assert.equal(join.name, bob.signedIn.avatar.name);

  // Bob walks into the lobby: ada sees the zone change and the pose.
  const seenZone = a.next("presence", (e) => e.avatar === bob.signedIn.avatar.id && e.event === "zone" && e.zone === "lobby");
  const seenPose = a.next("poses", (p) => p.poses.some((q) => q.avatar === bob.signedIn.avatar.id));
  assert.ok(b.sendPose({ head: { pos: [2, 1.7, 3], rot: [0, 0, 0, 1] } }));
  await seenZone;
  const poses = await seenPose;
  const pose = poses.poses.find((q) => q.avatar === bob.signedIn.avatar.id)!;
  assert.deepEqual(pose.head.pos.map((v) => Math.round(v * 10) / 10), [2, 1.7, 3]);

  const seenLeave = a.next("presence", (e) => e.avatar === bob.signedIn.avatar.id && e.event === "leave");
  b.leave();
  await seenLeave;
});

test("a refused join or zone step is an error with its code; the connection stays", async () => {
  const visitor = await newAvatar("visitor");
  const s = socketOf(visitor);
  await s.connect();
  await assert.rejects(s.join("atlantis"), (err: unknown) => err instanceof JoinError && err.code === "unknown-scene");
  await s.join("foundry");
  // The press bay is for operators: the realm refuses the step in.
  const denied = s.next("error", (e) => e.code === "denied");
  s.sendPose({ head: { pos: [10, 1.7, 4], rot: [0, 0, 0, 1] } });
  assert.match((await denied).reason ?? "", /press-bay|EnterZone|policy/i);
  assert.ok(s.ping());
  await s.next("message", (m) => m.type === "pong");
});

test("4409: a socket replaced by its session's new connection does not reconnect", async () => {
  const a = await newAvatar("replaced");
  const first = socketOf(a);
  await first.connect();
  const replaced = first.next("replaced");
  const second = socketOf(a);
  await second.connect();
  await replaced;
  assert.ok(first.stopped);
  // Were the first to reconnect (its back-off is 20 ms), it would take the
  // session back and close the second with 4409; the second stays.
  await sleep(300);
  assert.equal(first.attempts, 1);
  assert.ok(second.ping());
  await second.next("message", (m) => m.type === "pong");
  assert.ok(!second.stopped);
  await assert.rejects(first.next("hello"), (err: unknown) => err instanceof SocketClosedError && err.code === CloseCode.Replaced);
});

test("4401: the socket signs in again through reauthenticate, reconnects and joins its scene again", async () => {
  const a = await newAvatar("reauth");
  let reasons: string[] = [];
  const s = socketOf(a, {
    reauthenticate: async (reason) => {
      reasons.push(reason);
      await a.passkeys.signIn();
    },
  });
  const hello = await s.connect();
  await s.join("foundry");
  const rejoined = s.next("joined", (j) => j.scene === "foundry");
  const again = s.next("hello", (h) => h.session.id !== hello.session.id);
  // Another client of the avatar ends this session.
  const other = new RealmClient({ baseUrl: realmURL(), token: a.client.token!, ...ownAddress() });
  await new Sessions(other).signOut();
  const second = await again;
  assert.equal(second.avatar.id, hello.avatar.id);
  assert.equal(reasons.length, 1);
  assert.match(reasons[0]!, /signed out/);
  await rejoined;
  assert.equal(s.attempts, 2);
});

test("4401 without a way to sign in again ends the socket with session-ended", async () => {
  const a = await newAvatar("ended");
  const s = socketOf(a);
  await s.connect();
  const ended = s.next("session-ended");
  await new Sessions(a.client).signOutEverywhere();
  assert.match((await ended).reason, /signed out/);
  assert.ok(s.stopped);
});

test("a dropped connection reconnects with back-off and joins its scene again", async () => {
  // A TCP proxy between the SDK and the realm, to cut the connection as a
  // network would: no close frame, so the client sees 1006.
  const target = new URL(realmURL());
  const live = new Set<net.Socket>();
  const proxy = net.createServer((c) => {
    const up = net.connect(Number(target.port), target.hostname);
    live.add(c).add(up);
    c.pipe(up).pipe(c);
    const end = () => (c.destroy(), up.destroy(), live.delete(c), live.delete(up));
    c.on("error", end).on("close", end);
    up.on("error", end).on("close", end);
  });
  await new Promise<void>((r) => proxy.listen(0, "localhost", r));
  after(() => proxy.close());
  const port = (proxy.address() as net.AddressInfo).port;

  const a = await newAvatar("drop");
  const viaProxy = new RealmClient({ baseUrl: `http://localhost:${port}`, token: a.client.token!, ...ownAddress() });
  const s = new RealmSocket(viaProxy, { webSocket: nodeWebSocket, backoff: { initialMs: 20, maxMs: 200 } });
  sockets.push(s);
  await s.connect();
  await s.join("foundry");
  const dropped = s.next("disconnect");
  const rejoined = s.next("joined", (j) => j.scene === "foundry");
  for (const c of live) c.destroy();
  const d = await dropped;
  assert.equal(d.code, CloseCode.Abnormal);
  assert.ok(d.reconnectInMs !== undefined && d.reconnectInMs <= 20, `reconnectInMs ${d.reconnectInMs}`);
  await rejoined;
  assert.equal(s.attempts, 2);
  assert.ok(!s.stopped);
});

test("back-off grows exponentially up to its ceiling, with full jitter", () => {
  const top = () => 1;
  assert.deepEqual([0, 1, 2, 3, 10].map((n) => backoffDelay(n, { initialMs: 100, maxMs: 1000 }, top)), [100, 200, 400, 800, 1000]);
  assert.equal(backoffDelay(5, {}, () => 0), 0);
  assert.equal(backoffDelay(1000, {}, top), 30_000);
});

test("a passkey added through another session reaches the socket", async () => {
  const a = await newAvatar("added");
  const s = socketOf(a);
  await s.connect();
  const added = s.next("passkey-added");
  const second = new SoftwareAuthenticator({ origin: realmURL() });
  await new Passkeys(a.client, { create: (o) => second.create(o), get: (o) => a.authenticator.get(o) }).addPasskey();
  const ev = await added;
  assert.equal(ev.passkey.id, second.credentialIds()[0]);
});

test("a session refused before the upgrade ends the socket instead of retrying for ever", async () => {
  const a = await newAvatar("refused");
  const token = a.client.token!;
  await new Sessions(a.client).signOut();
  const stale = new RealmClient({ baseUrl: realmURL(), token, ...ownAddress() });
  const s = new RealmSocket(stale, { webSocket: nodeWebSocket, backoff: { initialMs: 20, maxMs: 200 } });
  sockets.push(s);
  const ended = s.next("session-ended");
  await assert.rejects(s.connect(), (err: unknown) => err instanceof SocketClosedError && err.code === CloseCode.SessionEnded);
  assert.match((await ended).reason, /signed out|revoked|expired|ended/i);
  assert.equal(s.attempts, 1);
});
