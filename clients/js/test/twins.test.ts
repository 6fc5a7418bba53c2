import assert from "node:assert/strict";
import { after, test } from "node:test";
import { ProblemError, RealmSocket, Twins, type TwinFeed } from "../src/index.js";
import { adminAvatar, newAvatar, nodeWebSocket, type Avatar } from "./realm.js";

const closers: Array<{ close(): void }> = [];
after(() => closers.forEach((c) => c.close()));

/** Puts the avatar in a zone of the foundry, as the realm sees it through its socket. */
async function standIn(a: Avatar, zone: string, pos: [number, number, number]): Promise<RealmSocket> {
  const s = new RealmSocket(a.client, { webSocket: nodeWebSocket });
  closers.push(s);
  await s.connect();
  await s.join("foundry");
  const moved = s.next("presence", (e) => e.avatar === a.signedIn.avatar.id && e.event === "zone" && e.zone === zone);
  s.sendPose({ head: { pos, rot: [0, 0, 0, 1] } });
  await moved;
  return s;
}

function feedOf(a: Avatar): TwinFeed {
  const feed = new Twins(a.client).feed({ webSocket: nodeWebSocket });
  closers.push(feed);
  return feed;
}

test("an operator beside the conveyor commands it; the feed carries the outcome", async () => {
  const op = await adminAvatar();
  const twins = new Twins(op.client, op.passkeys);
  const list = await twins.list();
  assert.ok(list.twins.some((t) => t.id === "conveyor-1"));
  assert.match(list.grant_key, /^0x[0-9a-fA-F]{40}$/);

  const feed = feedOf(op);
  const first = await feed.connect();
  assert.ok(first.twins?.some((t) => t.id === "conveyor-1"));
  await standIn(op, "conveyor-line", [20, 1.7, 4]);

  const outcome = feed.next("outcome", (m) => m.twin === "conveyor-1");
  const key = `sdk-conveyor-${Date.now()}`;
  const res = await twins.command("conveyor-1", "belt-speed", { op: "set", value: 0.4, reason: "sdk test" }, { idempotencyKey: key });
  assert.equal(res.status, 200);
  assert.equal(res.answer.status, "done");
  assert.ok(res.answer.grant?.signature, "the realm's signed grant");
  assert.equal((await outcome).outcome?.status, "done");

  // The same key again is the same command: the first answer, replayed.
  const again = await twins.command("conveyor-1", "belt-speed", { op: "set", value: 0.4, reason: "sdk test" }, { idempotencyKey: key });
  assert.deepEqual(again.answer.grant, res.answer.grant);

  await assert.rejects(
    twins.command("conveyor-1", "belt-speed", { op: "set", value: 99 }),
    (err: unknown) => err instanceof ProblemError && err.status === 422 && err.is("out-of-envelope"),
  );
});

test("a high-risk command is stepped up on its hash; without the step-up it is refused", async () => {
  const op = await adminAvatar();
  await standIn(op, "control-room", [4, 1.7, 10]);
  await assert.rejects(
    new Twins(op.client).command("press-1", "ram", { op: "set", value: 20 }),
    (err: unknown) => err instanceof ProblemError && err.status === 403,
  );
  const res = await new Twins(op.client, op.passkeys).command("press-1", "ram", { op: "set", value: 20 });
  assert.equal(res.status, 200);
  assert.equal(res.answer.status, "done");
});

test("a critical command waits for a second supervisor's approval", async () => {
  const op = await adminAvatar();
  await standIn(op, "control-room", [4, 1.7, 10]);
  // A second supervisor, made one by the administrator (a step-up bound to the change).
  const sup: Avatar = await newAvatar("supervisor");
  const roles = await op.client.call("getRolesDigest", { path: { id: sup.signedIn.avatar.id }, body: { roles: ["supervisor"] } });
  await op.passkeys.stepUp(roles.action_digest);
  await op.client.call("setRoles", { path: { id: sup.signedIn.avatar.id }, body: { roles: ["supervisor"] } });

  const feed = feedOf(op);
  await feed.connect();
  const waiting = feed.next("approval", (m) => m.twin === "press-1");
  const res = await new Twins(op.client, op.passkeys).command("press-1", "pressure", { op: "set", value: 5, reason: "sdk approval" });
  assert.equal(res.status, 202);
  assert.equal(res.answer.status, "pending_approval");
  await waiting;
  const id = res.answer.approval!.id;

  const supTwins = new Twins(sup.client, sup.passkeys);
  assert.ok((await supTwins.approvals()).some((a) => a.approval.id === id));
  const approved = await supTwins.approve(id);
  assert.equal(approved.answer?.status, "done");
});
