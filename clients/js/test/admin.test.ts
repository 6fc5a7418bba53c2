// The tests that need the realm's administrator (operator, supervisor,
// minter), in one file: its passkey's counter lives in one process (see
// scripts/run-tests.mjs).
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import {
  Market,
  ProblemError,
  RealmSocket,
  Twins,
  eip1193Signer,
  hashTypedData,
  localKeySigner,
  randomSecretKey,
  signDigest,
  verifyReceipt,
  type CommandRequest,
  type CommandResult,
  type EIP1193Provider,
  type TwinFeed,
  type TypedData,
} from "../src/index.js";
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

/**
 * Commands until the gateway does not refuse for a stale revocation feed:
 * a gateway acts only within 3 s of the realm's last complete revocation
 * notice (one a second), which a loaded machine can delay. Any other
 * answer is returned as it is.
 */
async function commandWhenFresh(twins: Twins, twin: string, actuator: string, command: CommandRequest): Promise<CommandResult> {
  for (let waited = 0; ; waited += 500) {
    const res = await twins.command(twin, actuator, command);
    if (res.answer.status !== "refused" || res.answer.ack?.reason !== "revocation_feed_stale" || waited > 30_000) return res;
    await new Promise((r) => setTimeout(r, 500));
  }
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

  const outcome = feed.next("outcome", (m) => m.twin === "conveyor-1" && m.outcome?.status === "done");
  const res = await commandWhenFresh(twins, "conveyor-1", "belt-speed", { op: "set", value: 0.4, reason: "sdk test" });
  const key = res.answer.command.key!;
  assert.equal(res.status, 200);
  assert.equal(res.answer.status, "done", JSON.stringify(res.answer.ack ?? res.answer));
  assert.ok(res.answer.grant?.signature, "the realm's signed grant");
  assert.equal((await outcome).outcome?.status, "done");

  // The same key again is the same command: the first answer, replayed.
  assert.ok(key, "the answer names its Idempotency-Key");
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
  const res = await commandWhenFresh(new Twins(op.client, op.passkeys), "press-1", "ram", { op: "set", value: 20 });
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
  // The approval is carried out at once: first wait until the gateway's
  // revocation feed is fresh (see commandWhenFresh).
  assert.equal((await commandWhenFresh(new Twins(op.client, op.passkeys), "press-1", "ram", { op: "set", value: 30 })).answer.status, "done");
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

/**
 * A wallet in software behind the EIP-1193 interface, as an injected
 * wallet answers a page: it signs eth_signTypedData_v4 requests for its one
 * account with a secp256k1 key, and refuses other accounts and methods.
 */
function softwareWallet(secretKey: Uint8Array): { provider: EIP1193Provider; account: string; requests: string[] } {
  const account = localKeySigner(secretKey).address;
  const requests: string[] = [];
  const provider: EIP1193Provider = {
    async request({ method, params }) {
      requests.push(method);
      if (method === "eth_requestAccounts" || method === "eth_accounts") return [account];
      if (method !== "eth_signTypedData_v4") throw Object.assign(new Error(`unsupported method ${method}`), { code: 4200 });
      const [who, json] = params as [string, string];
      if (who.toLowerCase() !== account.toLowerCase()) throw Object.assign(new Error("unknown account"), { code: 4100 });
      return signDigest(hashTypedData(JSON.parse(json) as TypedData), secretKey);
    },
  };
  return { provider, account, requests };
}

test("market: a wallet linked with an EIP-1193 signature, a transfer signed by a local key, its receipt verified offline", async () => {
  const admin = await adminAvatar();
  const market = new Market(admin.client);
  const key = randomSecretKey();
  const wallet = softwareWallet(key);
  const [account] = (await wallet.provider.request({ method: "eth_requestAccounts" })) as string[];
  const linked = await market.linkWallet(eip1193Signer(wallet.provider, account!));
  assert.ok(linked.wallets.some((w) => w.address === account));
  assert.ok(wallet.requests.includes("eth_signTypedData_v4"));

  await market.mint({ collection: "credits", to: account!, amount: "500" });
  const nonce = (await market.wallet()).wallets.find((w) => w.address === account)!.next_nonce;
  const to = localKeySigner(randomSecretKey()).address;
  const deadline = String(Math.floor(Date.now() / 1000) + 600);
  const intent = { collection: "credits", from: account!, to, amount: "40", nonce, deadline };
  const answer = await market.transfer(intent, localKeySigner(key), { idempotencyKey: `sdk-transfer-${nonce}-${account}` });
  assert.ok(answer.sequence > 0);

  const { domain } = await market.domain();
  const signers = await market.receiptSigners();
  const verified = verifyReceipt(answer, { domain, signers, intent: answer.receipt.receipt.message.intent as string });
  assert.ok(verified.ok, verified.reason);
  assert.equal(verified.digest, answer.receipt.digest.toLowerCase());
  const fetched = await market.receipt(answer.receipt.digest);
  assert.ok(verifyReceipt(fetched, { domain, signers }).ok);

  // Altered, or checked against signers the holder does not trust, it fails with a reason.
  const altered = structuredClone(fetched);
  (altered.receipt.message as Record<string, unknown>).sequence = "999999";
  const bad = verifyReceipt(altered, { domain, signers });
  assert.equal(bad.ok, false);
  assert.equal(bad.code, "digest-mismatch", bad.reason);
  const stranger = verifyReceipt(fetched, { domain, signers: [to] });
  assert.equal(stranger.code, "wrong-signer", stranger.reason);

  // Any change to a signed member of the receipt, or to its signature,
  // fails the verification and never throws.
  const members = Object.keys(fetched.receipt.message);
  for (let i = 0; i < 100; i++) {
    const mutated = structuredClone(fetched);
    const k = members[i % members.length]!;
    if (i % 5 === 4) {
      mutated.signature = mutated.signature.slice(0, 2 + (i % 120)) + "f" + mutated.signature.slice(3 + (i % 120));
    } else {
      (mutated.receipt.message as Record<string, unknown>)[k] = [null, 0, "0x", "1" + i, { i }, [i], true][i % 7];
    }
    // A value that reads as the one signed (0 for "0") is no change.
    const before = (fetched.receipt.message as Record<string, unknown>)[k];
    const after = (mutated.receipt.message as Record<string, unknown>)[k];
    if (mutated.signature === fetched.signature && String(after) === String(before)) continue;
    const v = verifyReceipt(mutated, { domain, signers });
    assert.equal(v.ok, false, `mutation ${i} of ${k} passed`);
    assert.ok(v.code !== "", `mutation ${i}: no failure code`);
  }

  // The same intent again (a retry after a lost answer) answers its
  // receipt; another intent with the spent nonce is refused.
  const retried = await market.transfer(intent, localKeySigner(key));
  assert.equal(retried.receipt.digest, answer.receipt.digest);
  await assert.rejects(
    market.transfer({ ...intent, amount: "41" }, localKeySigner(key)),
    (err: unknown) => err instanceof ProblemError && err.is("transfer-rejected") && /nonce/.test(err.detail),
  );
});

test("EIP-712: the specification's Mail example hashes, signs and recovers as published", async () => {
  // EIP-712's own test vector (eip-712.md, "Mail"), signed by keccak256("cow").
  const td: TypedData = {
    types: {
      EIP712Domain: [
        { name: "name", type: "string" },
        { name: "version", type: "string" },
        { name: "chainId", type: "uint256" },
        { name: "verifyingContract", type: "address" },
      ],
      Person: [
        { name: "name", type: "string" },
        { name: "wallet", type: "address" },
      ],
      Mail: [
        { name: "from", type: "Person" },
        { name: "to", type: "Person" },
        { name: "contents", type: "string" },
      ],
    },
    primaryType: "Mail",
    domain: { name: "Ether Mail", version: "1", chainId: 1, verifyingContract: "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC" },
    message: {
      from: { name: "Cow", wallet: "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826" },
      to: { name: "Bob", wallet: "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB" },
      contents: "Hello, Bob!",
    },
  };
  assert.equal(hashTypedData(td), "0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2");
  const { keccak_256 } = await import("@noble/hashes/sha3.js");
  const cow = keccak_256(new TextEncoder().encode("cow"));
  const signer = localKeySigner(cow);
  assert.equal(signer.address, "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826");
  assert.equal(
    await signer.signTypedData(td),
    "0x4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b915621c",
  );
  // A high-s twin of a valid signature is refused, as the realm refuses it.
  const n = secp256k1.Point.CURVE().n;
  const s = BigInt("0x07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b91562");
  const highS = "0x4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d" + (n - s).toString(16).padStart(64, "0") + "1b";
  const { recoverAddress } = await import("../src/index.js");
  assert.throws(() => recoverAddress(hashTypedData(td), highS), /signature-high-s/);
});
